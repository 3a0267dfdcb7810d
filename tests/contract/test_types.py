"""mypy --strict passes on depot, services and native, as installed (tools/typecheck.py)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


# mypy over the whole package takes a minute or two cold; its cache (.mypy_cache) makes reruns fast.
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_mypy_strict_has_no_errors() -> None:
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "typecheck.py")], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.rstrip().endswith("0 error(s)"), r.stdout
