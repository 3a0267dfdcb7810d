"""One `depot server` per data dir, and what that server leaves on disk.

A second server on the same DEPOT_DATA_DIR used to start, share the first
one's embedded PostgreSQL and stop it on exit, after which the first one
failed every call. Now the second exits at once with one line naming the
first; the first keeps serving. Both run as real processes on an embedded
PostgreSQL, as a user would start them.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from support.servers import free_port

from depot.metadata.v1 import metadata_pb2 as pb
from depot.metadata.v1 import metadata_pb2_grpc
from depot.services.allinone.postgres import LocalPostgres

START_S = 120.0


def _server(data_dir: Path, port: int, workers: int = 1, **popen: object) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEPOT_")}
    env.update(DEPOT_DATA_DIR=str(data_dir), DEPOT_LISTEN=f"127.0.0.1:{port}", DEPOT_WORKERS=str(workers))
    return subprocess.Popen(
        [sys.executable, "-m", "depot.cli", "server"],
        env=env,
        text=True,
        **popen,  # type: ignore[call-overload]  # stdout/stderr choices per caller
    )


def _caller(address: str, key: str) -> str:
    with grpc.insecure_channel(address) as ch:
        stub = metadata_pb2_grpc.AccessServiceStub(ch)
        return stub.GetCaller(pb.GetCallerRequest(), metadata=(("authorization", f"Bearer {key}"),), timeout=30).user


@pytest.fixture
def first(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[str], dict[str, object]]]:
    data = tmp_path / "data"
    # With a worker process, which must not hold the lock itself.
    proc = _server(data, free_port(), workers=2, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + START_S
        while not (data / "server.json").exists():
            assert proc.poll() is None, f"the first server exited with {proc.returncode}"
            assert time.monotonic() < deadline, "the first server did not start"
            time.sleep(0.2)
        yield data, proc, json.loads((data / "server.json").read_text())
    finally:
        proc.terminate()
        proc.wait(60)
        LocalPostgres.for_data_dir(data).destroy()


@pytest.mark.slow
def test_second_server_on_the_same_data_dir_exits_and_the_first_keeps_serving(first) -> None:
    data, proc, info = first
    key = (data / "admin.key").read_text().strip()
    assert _caller(str(info["address"]), key) == "admin"

    second = _server(data, free_port(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = second.communicate(timeout=60)
    finally:
        if second.poll() is None:
            second.terminate()
            second.communicate(timeout=60)
    assert second.returncode == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert f"pid {proc.pid}" in lines[0] and str(info["address"]) in lines[0] and str(data) in lines[0]
    assert "serving on" not in out

    # The first server, its PostgreSQL included, is untouched.
    assert proc.poll() is None
    assert _caller(str(info["address"]), key) == "admin"
    assert json.loads((data / "server.json").read_text())["pid"] == proc.pid


@pytest.mark.slow
def test_data_dir_and_secrets_are_private(first) -> None:
    data, _, _ = first
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    for name in ("admin.key", "internal.secret", "server.lock"):
        assert stat.S_IMODE((data / name).stat().st_mode) == 0o600, name


def _processes_holding(path: Path) -> set[int]:
    pids = set()
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            if any(os.readlink(fd) == str(path) for fd in fd_dir.iterdir()):
                pids.add(int(fd_dir.parent.name))
        except OSError:
            continue  # gone, or not ours to look at
    return pids


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_only_the_server_process_holds_the_lock(first) -> None:
    # Neither its workers nor its PostgreSQL: a server that is gone, however
    # it went, never keeps the data dir locked.
    data, proc, _ = first
    assert _processes_holding((data / "server.lock").resolve()) == {proc.pid}


def test_a_stopped_server_leaves_the_data_dir_free(tmp_path: Path) -> None:
    from depot.services.allinone.app import DataDirBusy, lock_data_dir

    fd = lock_data_dir(tmp_path)
    with pytest.raises(DataDirBusy, match=f"pid {os.getpid()}, still starting"):
        lock_data_dir(tmp_path)
    os.close(fd)
    os.close(lock_data_dir(tmp_path))
