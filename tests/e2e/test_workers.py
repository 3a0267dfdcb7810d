"""DEPOT_WORKERS: several all-in-one processes serve one port, and stop with the first."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from support.entities import create_team
from support.stubs import Stubs

from depot.services.allinone.config import AllInOneConfig


def _listening_socket_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":  # 0A: LISTEN
                inodes.add(fields[9])
    return inodes


def _sockets_of(pid: int) -> set[str]:
    out = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            out.add(target[len("socket:[") : -1])
    return out


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _wait_gone(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except FileNotFoundError:
            return True
        if stat[stat.rindex(")") + 2] == "Z":  # exited, not yet reaped by its parent
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def two_workers(tmp_path: Path, database_url: str):  # noqa: ANN201
    env = dict(
        os.environ,
        DEPOT_DATA_DIR=str(tmp_path / "data"),
        DEPOT_DATABASE_URL=database_url,
        DEPOT_STORAGE_URL=(tmp_path / "blobs").as_uri(),
        DEPOT_LISTEN="127.0.0.1:0",
        DEPOT_WORKERS="2",
        DEPOT_INTERNAL_SECRET="worker-test-secret",
    )
    proc = subprocess.Popen([sys.executable, "-m", "depot.services.allinone"], env=env)
    info = tmp_path / "data" / "server.json"
    deadline = time.monotonic() + 60
    while not info.exists():
        assert proc.poll() is None and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.1)
    yield proc, json.loads(info.read_text())
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_two_processes_listen_on_one_port_and_serve(two_workers) -> None:
    proc, info = two_workers
    port = int(info["address"].rsplit(":", 1)[1])
    workers = _children(proc.pid)
    listening = _listening_socket_inodes(port)
    owners = [pid for pid in [proc.pid, *workers] if _sockets_of(pid) & listening]
    assert len(owners) == 2, (proc.pid, workers, owners)
    for pid in workers:  # the secret reaches workers through a pipe, not their environment
        assert b"DEPOT_INTERNAL_SECRET" not in Path(f"/proc/{pid}/environ").read_bytes()
    key = Path(info["admin_key_file"]).read_text().strip()
    create_team(info["address"], key, "team")
    # Separate connections land on either process; every one of them works,
    # also when the manifest was signed by the other process.
    for i in range(8):
        with grpc.insecure_channel(info["address"], options=[("grpc.use_local_subchannel_pool", 1)]) as ch:
            v = Stubs(ch, key).log_small("team", "p", "ds", {"f": f"{i}".encode()})
            assert v.index == i


def test_workers_stop_with_the_first_process(two_workers) -> None:
    proc, _ = two_workers
    workers = [pid for pid in _children(proc.pid) if pid != proc.pid]
    assert workers
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    assert all(_wait_gone(pid, 15) for pid in workers)


def test_workers_exit_when_the_first_process_is_killed(two_workers) -> None:
    proc, _ = two_workers
    workers = _children(proc.pid)
    proc.kill()
    proc.wait()
    assert all(_wait_gone(pid, 15) for pid in workers)


def test_worker_count_is_checked_and_settings_round_trip(tmp_path: Path) -> None:
    base = {"DEPOT_DATA_DIR": str(tmp_path), "DEPOT_INTERNAL_SECRET": "s3cret", "DEPOT_WORKERS": "3"}
    config = AllInOneConfig.from_env(base)
    assert config.workers == 3
    env = config.to_env()
    assert "DEPOT_INTERNAL_SECRET" not in env  # workers read it from their stdin
    assert AllInOneConfig.from_env({**env, "DEPOT_INTERNAL_SECRET": "s3cret"}) == config
    for bad in ("0", "65", "two"):
        with pytest.raises(ValueError, match="DEPOT_WORKERS must be a whole number from 1 to 64"):
            AllInOneConfig.from_env({**base, "DEPOT_WORKERS": bad})


def test_a_second_server_cannot_join_a_served_port(two_workers, tmp_path: Path, database_url: str) -> None:
    _, info = two_workers
    env = dict(
        os.environ,
        DEPOT_DATA_DIR=str(tmp_path / "other"),
        DEPOT_DATABASE_URL=database_url,
        DEPOT_LISTEN=info["address"],
        DEPOT_WORKERS="2",
    )
    other = subprocess.run(
        [sys.executable, "-m", "depot.services.allinone"], env=env, capture_output=True, text=True, timeout=60
    )
    assert other.returncode != 0
    assert f"cannot listen on {info['address']}" in other.stderr
