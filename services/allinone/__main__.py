"""`python -m depot.services.allinone`: the same as `depot server`."""

from __future__ import annotations

import logging
import os
import sys

from depot.services.common import serving, telemetry
from depot.services.common.config import ConfigError

from .app import WORKER_FLAG, serve, serve_worker
from .config import AllInOneConfig


def main(argv: list[str]) -> int:
    try:
        config = AllInOneConfig.from_env(os.environ)
    except ConfigError as e:
        print(f"depot: error: {e}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format=telemetry.LOG_FORMAT)
    telemetry.setup("depot", config.server.telemetry)
    serving.run(serve_worker(config) if argv == [WORKER_FLAG] else serve(config))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
