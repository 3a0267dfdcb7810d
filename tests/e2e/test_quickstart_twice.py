"""The quickstart example passes again on a server that kept the last run's data.

``scripts/quickstart.sh`` keeps its data dir, so a second run used to log
into the same project, deduplicate onto the first run's versions and fail
its own asserts with a traceback. It also must not rely on entities being
created by a superuser on first use: it logs into the key's own user.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "quickstart.py"


@pytest.mark.slow
def test_quickstart_example_runs_twice(server) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEPOT_")}
    env.update(DEPOT_ADDRESS=server.address, DEPOT_API_KEY=server.admin_key)
    for attempt in (1, 2):
        done = subprocess.run([sys.executable, str(EXAMPLE)], env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"run {attempt}:\n{done.stdout}\n{done.stderr}"
        assert done.stdout.rstrip().endswith("quickstart: OK")
