"""``depot artifact get --prefix`` and ``export``: streamed, and the same output as the in-memory forms."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import depot


def _depot(server: Any, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, DEPOT_ADDRESS=server.address, DEPOT_API_KEY=server.admin_key)
    return subprocess.run([sys.executable, "-m", "depot", *args], env=env, capture_output=True, text=True, timeout=60)


def _logged(server: Any, tmp_path: Path) -> depot.Artifact:
    data = tmp_path / "data"
    for rel, body in {"data/a.txt": "a", "data/sub/b.txt": "b", "data2/c.txt": "c", "data.csv": "d"}.items():
        (data / rel).parent.mkdir(parents=True, exist_ok=True)
        (data / rel).write_text(body)
    ref = tmp_path / "ref.bin"
    ref.write_bytes(b"by reference")
    art = depot.Artifact("ds", type="dataset")
    art.add_dir(data)
    art.add_reference(ref.as_uri(), name="refs/r\u00e9f.bin")
    kw = {"address": server.address, "api_key": server.admin_key}
    with depot.init(entity="team", project="p", job_type="t", **kw) as run:
        run.log_artifact(art).wait()
    return depot.Api(**kw).artifact("team/p/ds:latest")


def test_get_with_a_prefix_fetches_only_that_directory_and_stays_quiet_off_a_terminal(
    server: Any, tmp_path: Path
) -> None:
    _logged(server, tmp_path)
    out = tmp_path / "out"
    r = _depot(server, "artifact", "get", "team/p/ds:latest", "--root", str(out), "--prefix", "data", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["path"] == str(out)
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "data/a.txt",
        "data/sub/b.txt",
    ]
    assert r.stderr == "", "no progress bar when stderr is not a terminal"


def test_export_streams_the_same_text_as_the_in_memory_export(server: Any, tmp_path: Path) -> None:
    art = _logged(server, tmp_path)
    expected = json.dumps(depot.export_wandb_manifest(art), indent=2) + "\n"
    out = tmp_path / "m.json"
    r = _depot(server, "artifact", "export", "team/p/ds:latest", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert out.read_text() == expected
    r = _depot(server, "artifact", "export", "team/p/ds:latest")
    assert r.returncode == 0, r.stderr
    assert r.stdout == expected
    assert list(json.loads(expected)["contents"]) == [
        "data.csv",
        "data/a.txt",
        "data/sub/b.txt",
        "data2/c.txt",
        "refs/r\u00e9f.bin",
    ]
