"""Reference fan-out across manifest service processes (docs/fanout.md).

metadata + two manifest processes sharing one PostgreSQL and one blob
directory; the S3 side is the simulator with latency and a concurrency cap,
so a listing of 100k keys takes a few seconds and its items are spread over
both replicas. One replica is SIGKILLed while it holds a claim: its lease
runs out, the other replica lists the item again, and the manifest is the
one a single process lists (same digest, same entries, same bytes).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import grpc
import pytest
import s3sim  # bench/s3sim.py (bench/ is on pythonpath)
from support.entities import create_team
from support.s3 import expected_digest, list_reference
from support.servers import free_port, wait_healthy

from depot.manifest.v1 import manifest_pb2 as mpb
from depot.manifest.v1 import manifest_pb2_grpc
from depot.services.manifest.s3_listing import S3Config

OBJECTS = 100_000
LEASE_S = 1.5

pytestmark = pytest.mark.slow


@dataclass
class Cluster:
    admin_key: str
    manifests: list[tuple[str, subprocess.Popen[bytes]]]


@pytest.fixture
def sim() -> Iterator[s3sim.SimulatorThread]:
    with s3sim.start_simulator(objects=OBJECTS, layout="nested", latency_ms=40.0, concurrency_cap=6) as sim:
        yield sim
        deadline = time.monotonic() + 30
        while sim.stats.in_flight and time.monotonic() < deadline:
            time.sleep(0.1)


@pytest.fixture
def cluster(database_url: str, tmp_path: Path, sim: s3sim.SimulatorThread) -> Iterator[Cluster]:
    ports = {name: free_port() for name in ("metadata", "manifest-a", "manifest-b")}
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEPOT_")}
    env.update(
        DEPOT_DATABASE_URL=database_url,
        DEPOT_STORAGE_URL=(tmp_path / "blobs").as_uri(),
        DEPOT_INTERNAL_SECRET=f"fanout-test-{os.getpid()}",
        DEPOT_METADATA_ADDRESS=f"127.0.0.1:{ports['metadata']}",
        DEPOT_DATA_DIR=str(tmp_path / "data"),
        DEPOT_REFERENCE_BUCKETS="bk",
        DEPOT_REFERENCE_S3_ENDPOINT_URL=sim.endpoint_url,
        DEPOT_FANOUT_MIN_OBJECTS="10000",
        DEPOT_FANOUT_LEASE_S=str(LEASE_S),
    )
    run = [sys.executable, "-m"]
    admin_key = subprocess.run(
        [*run, "depot.services.metadata", "bootstrap-admin"],
        env=env,
        check=True,
        timeout=60,
        capture_output=True,
        text=True,
    ).stdout.strip()
    procs = {}
    for name, port in ports.items():
        with open(tmp_path / f"{name}.log", "wb") as log:  # the process keeps its own descriptor
            procs[name] = subprocess.Popen(
                [*run, f"depot.services.{name.split('-')[0]}", "serve"],
                env={**env, "DEPOT_LISTEN": f"127.0.0.1:{port}"},
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
    try:
        deadline = time.monotonic() + 90
        for name, port in ports.items():
            wait_healthy(port, procs[name], deadline)
        create_team(f"127.0.0.1:{ports['metadata']}", admin_key, "team")
        yield Cluster(admin_key, [(f"127.0.0.1:{ports[n]}", procs[n]) for n in ("manifest-a", "manifest-b")])
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.terminate()
        for p in procs.values():
            p.wait(30)


def _resolve(address: str, key: str, request_id: str) -> mpb.ResolveProgress:
    header = mpb.ManifestHeader(
        entity="team", digest_algorithm="md5", references=[mpb.Reference(uri="s3://bk/dataset/")]
    )
    request = mpb.ResolveReferencesRequest(header=header, request_id=request_id)
    with grpc.insecure_channel(address) as ch:
        stub = manifest_pb2_grpc.ManifestServiceStub(ch)
        messages = list(stub.ResolveReferences(request, metadata=(("authorization", f"Bearer {key}"),), timeout=180))
    assert messages[-1].HasField("manifest")
    return messages[-1]


def _single_process(sim: s3sim.SimulatorThread) -> tuple[str, int]:
    config = S3Config(
        endpoint_url=sim.endpoint_url, region="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    summary, _, _ = asyncio.run(list_reference("s3://bk/dataset/", config))
    return summary.digest, summary.count


async def _claims(database_url: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetch("SELECT job_id, item, state, claimed_by, attempts FROM reference_fanout_items")
    finally:
        await conn.close()


def _watch_and_kill(database_url: str, victim: subprocess.Popen[bytes], seen: dict[str, object]) -> None:
    """SIGKILLs ``victim`` once it holds a claim; then records who took its item over."""
    mark = f":{victim.pid}:"
    deadline = time.monotonic() + 120
    held = None
    while held is None and time.monotonic() < deadline:
        rows = asyncio.run(_claims(database_url))
        seen["replicas"] = {r["claimed_by"] for r in rows if r["claimed_by"]} | set(seen.get("replicas", set()))  # type: ignore[arg-type]
        held = next((r for r in rows if r["state"] == "pending" and mark in (r["claimed_by"] or "")), None)
        time.sleep(0.02)
    if held is None:
        return
    victim.send_signal(signal.SIGKILL)
    victim.wait(30)
    seen["killed_item"] = (held["job_id"], held["item"])
    while time.monotonic() < deadline:
        rows = [r for r in asyncio.run(_claims(database_url)) if (r["job_id"], r["item"]) == seen["killed_item"]]
        if not rows:
            return  # the job finished before this poll saw the takeover (attempts show it below)
        if mark not in (rows[0]["claimed_by"] or ""):
            seen["taken_over_by"] = rows[0]["claimed_by"]
            seen["attempts"] = rows[0]["attempts"]
            return
        time.sleep(0.05)


def test_killed_replica_loses_nothing_and_the_digest_is_the_single_process_one(
    cluster: Cluster, sim: s3sim.SimulatorThread, database_url: str
) -> None:
    (a, _), (_, b_proc) = cluster.manifests
    seen: dict[str, object] = {}
    watcher = threading.Thread(target=_watch_and_kill, args=(database_url, b_proc, seen), daemon=True)
    watcher.start()
    last = _resolve(a, cluster.admin_key, "fanned-out")
    watcher.join(60)

    assert "killed_item" in seen, "the second replica never claimed an item"
    assert b_proc.returncode == -signal.SIGKILL
    # Its claim expired and the surviving replica listed the item again.
    assert "taken_over_by" in seen and f":{b_proc.pid}:" not in str(seen["taken_over_by"])
    assert int(seen["attempts"]) >= 2  # type: ignore[call-overload]
    assert len(seen["replicas"]) >= 2  # type: ignore[arg-type]

    digest, count = _single_process(sim)
    want, n = expected_digest(sim.sim.space, "dataset/")
    assert (digest, count) == (want, n) == (last.manifest.digest, last.manifest.file_count)
    # The job and its items are gone once the manifest is stored.
    assert asyncio.run(_claims(database_url)) == []


def test_two_live_replicas_give_the_single_process_manifest(cluster: Cluster, sim: s3sim.SimulatorThread) -> None:
    (a, _), (b, _) = cluster.manifests
    first = _resolve(a, cluster.admin_key, "one")
    second = _resolve(b, cluster.admin_key, "two")
    digest, count = _single_process(sim)
    assert first.manifest.digest == second.manifest.digest == digest
    assert first.manifest.manifest_id == second.manifest.manifest_id
    assert first.manifest.file_count == count == OBJECTS
