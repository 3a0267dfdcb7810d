"""The CLI round trip: put files, export W&B JSON, import it back, errors exit non-zero."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def _depot(server, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, DEPOT_ADDRESS=server.address, DEPOT_API_KEY=server.admin_key)
    return subprocess.run([sys.executable, "-m", "depot", *args], env=env, capture_output=True, text=True, timeout=60)


def test_put_export_import(server, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("alpha")
    r = _depot(server, "artifact", "put", "team/p/ds", str(data), "--type", "dataset", "--alias", "gold", "--json")
    assert r.returncode == 0, r.stderr
    put = json.loads(r.stdout)
    assert put["version"] == "team/p/ds:v0" and "gold" in put["aliases"]

    out = tmp_path / "m.json"
    r = _depot(server, "artifact", "export", "team/p/ds:gold", "-o", str(out))
    assert r.returncode == 0, r.stderr
    manifest = json.loads(out.read_text())
    assert manifest["version"] == 1 and list(manifest["contents"]) == ["a.txt"]

    r = _depot(
        server, "artifact", "import", str(out), "team/p/copy", "--type", "dataset", "--root", str(data), "--json"
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["version"] == "team/p/copy:v0"


def test_errors_exit_non_zero_with_one_line(server) -> None:
    r = _depot(server, "artifact", "get", "team/p/missing:latest")
    assert r.returncode == 1
    assert r.stderr.strip().count("\n") == 0 and "NotFoundError" in r.stderr


def test_server_refuses_a_bad_worker_count_in_one_line(tmp_path: Path) -> None:
    env = dict(os.environ, DEPOT_DATA_DIR=str(tmp_path))
    r = subprocess.run(
        [sys.executable, "-m", "depot", "server", "--workers", "0"], env=env, capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 2
    assert r.stderr.strip() == "depot: error: DEPOT_WORKERS must be a whole number from 1 to 64, not '0'"
