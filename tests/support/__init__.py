"""What the tests share: servers, stubs, entities and builders, imported as ``support.*``.

pytest puts ``tests/`` on ``sys.path`` (``pythonpath`` in pyproject.toml), so
``from support.servers import ServerThread`` works from any test folder
without path inserts; test modules themselves never import each other.
"""

import pytest

# The helpers that assert: rewritten like test modules, so a failure shows the values.
pytest.register_assert_rewrite("support.sdk_errors", "support.servers")
