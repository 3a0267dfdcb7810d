import sys

from depot.cli import main

sys.exit(main())
