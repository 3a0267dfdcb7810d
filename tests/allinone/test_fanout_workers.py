"""The all-in-one's DEPOT_WORKERS processes share a large reference listing (docs/fanout.md).

``depot server`` with two processes on one PostgreSQL resolves an s3://
reference on the S3 simulator, above a low DEPOT_FANOUT_MIN_OBJECTS: the
job's items are claimed by both processes (watched in the items table
while the listing runs: the rows are deleted once the manifest is stored),
the coordinator logs the job, and the manifest is the one a single process
lists. With one process the same reference is listed in-process: no job.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import grpc
import pytest
import s3sim  # bench/s3sim.py (bench/ is on pythonpath)
from support.entities import create_team
from support.s3 import expected_digest, list_reference

from depot.manifest.v1 import manifest_pb2 as mpb
from depot.manifest.v1 import manifest_pb2_grpc
from depot.services.allinone.config import AllInOneConfig
from depot.services.manifest.config import ManifestConfig
from depot.services.manifest.fanout import FanOutSettings
from depot.services.manifest.s3_listing import S3Config

OBJECTS = 40_000
FANNED_OUT = "ranges fanned out as job"

pytestmark = pytest.mark.slow


@pytest.fixture
def sim() -> Iterator[s3sim.SimulatorThread]:
    # Latency and a concurrency cap stretch the listing over a second or
    # two, so the process the caller did not reach has time to claim items.
    with s3sim.start_simulator(objects=OBJECTS, layout="nested", latency_ms=30.0, concurrency_cap=6) as sim:
        yield sim


def _server(tmp_path: Path, database_url: str, sim: s3sim.SimulatorThread, workers: int) -> Iterator[dict[str, str]]:
    """``depot server`` with ``workers`` processes; yields its server.json plus its pid and log."""
    data, log_path = tmp_path / "data", tmp_path / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEPOT_")}
    env.update(
        DEPOT_DATA_DIR=str(data),
        DEPOT_DATABASE_URL=database_url,
        DEPOT_STORAGE_URL=(tmp_path / "blobs").as_uri(),
        DEPOT_LISTEN="127.0.0.1:0",
        DEPOT_WORKERS=str(workers),
        DEPOT_INTERNAL_SECRET=f"aio-fanout-{os.getpid()}",
        DEPOT_REFERENCE_BUCKETS="bk",
        DEPOT_REFERENCE_S3_ENDPOINT_URL=sim.endpoint_url,
        DEPOT_FANOUT_MIN_OBJECTS="1000",
    )
    with open(log_path, "wb") as log:  # the server (and its workers) keep their own descriptor
        proc = subprocess.Popen([sys.executable, "-m", "depot.services.allinone"], env=env, stderr=log)
    try:
        info = data / "server.json"
        deadline = time.monotonic() + 90
        while not info.exists():
            assert proc.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.1)
        yield {**json.loads(info.read_text()), "pid": str(proc.pid), "log": str(log_path)}
    finally:
        if proc.poll() is None:
            proc.terminate()
        proc.wait(30)


@pytest.fixture
def two_processes(tmp_path: Path, database_url: str, sim: s3sim.SimulatorThread) -> Iterator[dict[str, str]]:
    yield from _server(tmp_path, database_url, sim, workers=2)


@pytest.fixture
def one_process(tmp_path: Path, database_url: str, sim: s3sim.SimulatorThread) -> Iterator[dict[str, str]]:
    yield from _server(tmp_path, database_url, sim, workers=1)


def _resolve(info: dict[str, str]) -> mpb.ResolveProgress:
    key = Path(info["admin_key_file"]).read_text().strip()
    create_team(info["address"], key, "team")
    header = mpb.ManifestHeader(
        entity="team", digest_algorithm="md5", references=[mpb.Reference(uri="s3://bk/dataset/")]
    )
    request = mpb.ResolveReferencesRequest(header=header, request_id="aio-fanout")
    with grpc.insecure_channel(info["address"]) as ch:
        stub = manifest_pb2_grpc.ManifestServiceStub(ch)
        messages = list(stub.ResolveReferences(request, metadata=(("authorization", f"Bearer {key}"),), timeout=120))
    assert messages[-1].HasField("manifest")
    return messages[-1]


def _single_process(sim: s3sim.SimulatorThread) -> tuple[str, int]:
    config = S3Config(
        endpoint_url=sim.endpoint_url, region="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    summary, _, _ = asyncio.run(list_reference("s3://bk/dataset/", config))
    return summary.digest, summary.count


def _watch_claims(database_url: str, stop: threading.Event, claimants: set[str]) -> None:
    """Records who claims fan-out items until ``stop``."""

    async def watch() -> None:
        conn = await asyncpg.connect(database_url)
        try:
            while not stop.is_set():
                rows = await conn.fetch("SELECT claimed_by FROM reference_fanout_items WHERE claimed_by IS NOT NULL")
                claimants.update(r["claimed_by"] for r in rows)
                await asyncio.sleep(0.02)
        finally:
            await conn.close()

    asyncio.run(watch())


def _pid(claimant: str) -> int:
    return int(claimant.split(":")[1])  # fanout.replica_name(): host:pid:random


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def test_two_processes_share_the_listing_and_give_the_single_process_manifest(
    two_processes: dict[str, str], sim: s3sim.SimulatorThread, database_url: str
) -> None:
    info = two_processes
    claimants: set[str] = set()
    stop = threading.Event()
    watcher = threading.Thread(target=_watch_claims, args=(database_url, stop, claimants), daemon=True)
    watcher.start()
    try:
        last = _resolve(info)
    finally:
        stop.set()
        watcher.join(10)

    first = int(info["pid"])
    processes = {first, *_children(first)}
    assert len(processes) == 2
    # Both processes listed key ranges of the one reference.
    assert {_pid(c) for c in claimants} == processes, (claimants, processes)
    assert FANNED_OUT in Path(info["log"]).read_text()

    want, n = expected_digest(sim.sim.space, "dataset/")
    assert _single_process(sim) == (want, n) == (last.manifest.digest, last.manifest.file_count)


def test_one_process_lists_in_process(one_process: dict[str, str], sim: s3sim.SimulatorThread) -> None:
    last = _resolve(one_process)
    assert FANNED_OUT not in Path(one_process["log"]).read_text()
    assert (last.manifest.digest, last.manifest.file_count) == expected_digest(sim.sim.space, "dataset/")


def test_fanout_settings_are_read_as_the_manifest_service_reads_them(tmp_path: Path) -> None:
    env = {
        "DEPOT_DATA_DIR": str(tmp_path),
        "DEPOT_INTERNAL_SECRET": "s3cret",
        "DEPOT_WORKERS": "2",
        "DEPOT_FANOUT_MIN_OBJECTS": "1234",
        "DEPOT_FANOUT_LEASE_S": "7.5",
    }
    config = AllInOneConfig.from_env(env)
    assert config.fanout == ManifestConfig.from_env(env).fanout == FanOutSettings(min_objects=1234, lease_s=7.5)
    # Workers get their settings through the environment.
    assert AllInOneConfig.from_env({**config.to_env(), "DEPOT_INTERNAL_SECRET": "s3cret"}) == config
    with pytest.raises(ValueError, match="DEPOT_FANOUT_MIN_OBJECTS"):
        AllInOneConfig.from_env({**env, "DEPOT_FANOUT_MIN_OBJECTS": "0"})
