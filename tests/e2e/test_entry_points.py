"""Each service's own entry point, as the Kubernetes Deployments run them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.entities import create_team
from support.servers import free_port, wait_healthy

import depot


@pytest.fixture
def services(database_url: str, tmp_path: Path) -> Iterator[tuple[dict[str, int], str]]:
    ports = {name: free_port() for name in ("metadata", "manifest", "gc")}
    env = dict(
        os.environ,
        DEPOT_DATABASE_URL=database_url,
        DEPOT_STORAGE_URL=(tmp_path / "blobs").as_uri(),
        DEPOT_INTERNAL_SECRET="entry-point-test-secret",
        DEPOT_METADATA_ADDRESS=f"127.0.0.1:{ports['metadata']}",
        DEPOT_DATA_DIR=str(tmp_path / "data"),
    )
    run = [sys.executable, "-m"]
    subprocess.run([*run, "depot.services.metadata", "migrate"], env=env, check=True, timeout=60)
    key = subprocess.run(
        [*run, "depot.services.metadata", "bootstrap-admin"],
        env=env,
        check=True,
        timeout=60,
        capture_output=True,
        text=True,
    ).stdout.strip()
    procs = {
        name: subprocess.Popen(
            [*run, f"depot.services.{name}", "serve"],
            env={**env, "DEPOT_LISTEN": f"127.0.0.1:{port}"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name, port in ports.items()
    }
    try:
        deadline = time.monotonic() + 60
        for name, port in ports.items():
            wait_healthy(port, procs[name], deadline)
        yield ports, key
    finally:
        for p in procs.values():
            p.terminate()
        for p in procs.values():
            p.wait(30)


def test_services_run_apart(services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ports, key = services
    assert key.startswith("dpt_")
    monkeypatch.setenv("DEPOT_MANIFEST_ADDRESS", f"127.0.0.1:{ports['manifest']}")
    create_team(f"127.0.0.1:{ports['metadata']}", key, "team")
    with depot.init(entity="team", project="p", address=f"127.0.0.1:{ports['metadata']}", api_key=key) as run:
        art = depot.Artifact("apart", type="dataset")
        with art.new_file("x.txt") as f:
            f.write("three processes")
        run.log_artifact(art).wait()
    assert art.version == "v0"
    assert (art.download(tmp_path / "out") / "x.txt").read_text() == "three processes"
