"""The README's first command passes again on the data dir its last run kept.

``scripts/quickstart.sh`` keeps its data dir, so a second run used to log
into the same project, deduplicate onto the first run's versions and fail
its own asserts with a traceback. It also must not rely on entities being
created by a superuser on first use: it logs into the key's own user. The
script itself runs here (its server start, the data-dir lock, the wait on
``server.json``), on a data dir of the test's own.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
# Two server starts on the embedded PostgreSQL (the first one runs initdb).
@pytest.mark.timeout(480)
def test_quickstart_script_runs_twice(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEPOT_")}
    env["DEPOT_DATA_DIR"] = str(tmp_path / "quickstart-data")
    for attempt in (1, 2):
        done = subprocess.run(
            ["bash", str(ROOT / "scripts" / "quickstart.sh")],
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert done.returncode == 0, f"run {attempt}:\n{done.stdout}\n{done.stderr}"
        assert "quickstart: OK" in done.stdout
        assert done.stdout.rstrip().endswith(f"data kept in {env['DEPOT_DATA_DIR']}")
