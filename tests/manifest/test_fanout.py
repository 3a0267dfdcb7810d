"""Reference fan-out, in one process: replicas as ReferenceFanOut instances on a real database.

The process-level proof (two manifest services, one SIGKILLed) is
test_fanout_processes.py; these pin the rules cheaply: the threshold, the
manifest equal to the single-process one, a lease that expires, a claim that
lost its item changing nothing.
"""

from __future__ import annotations

import asyncio
import io
import json
import threading
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
import s3sim  # bench/s3sim.py (bench/ is on pythonpath)

from depot.native import ManifestReader, ManifestWriter
from depot.services.common.errors import PermissionDenied, TooManyObjects
from depot.services.manifest.fanout import FanOutSettings, ReferenceFanOut
from depot.services.manifest.references import ReferencePolicy
from depot.services.manifest.s3_listing import S3Config, write_s3_reference
from depot.services.manifest.store import BlobStore, open_store

OBJECTS = 20_000
URI = "s3://bk/dataset/"


@pytest.fixture
async def sim() -> AsyncIterator[s3sim.Simulator]:
    async with s3sim.Simulator(objects=OBJECTS, layout="nested", latency_ms=2.0) as sim:
        yield sim


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[BlobStore]:
    s = await open_store((tmp_path / "blobs").as_uri())
    yield s
    await s.aclose()


def _policy(sim: s3sim.Simulator) -> ReferencePolicy:
    config = S3Config(
        endpoint_url=sim.endpoint_url, region="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    return ReferencePolicy(frozenset({"bk"}), config)


async def _replica(database_url: str, store: BlobStore, policy: ReferencePolicy, **kw: float) -> ReferenceFanOut:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=8)
    settings = FanOutSettings(**{"min_objects": 5000, "lease_s": 5.0, "poll_s": 0.05, **kw})  # type: ignore[arg-type]
    return ReferenceFanOut(pool, store, policy, settings)


async def _fanned(replica: ReferenceFanOut, policy: ReferencePolicy, max_objects: int = OBJECTS) -> bytes:
    buf = io.BytesIO()
    writer = ManifestWriter(buf, "md5", check_paths=True)
    await write_s3_reference(URI, writer, session_config=policy.s3, fan_out=replica, max_objects=max_objects)
    writer.close()
    return buf.getvalue()


async def _single_bytes(policy: ReferencePolicy) -> bytes:
    buf = io.BytesIO()
    writer = ManifestWriter(buf, "md5", check_paths=True)
    await write_s3_reference(URI, writer, session_config=policy.s3)
    writer.close()
    return buf.getvalue()


async def _rows(database_url: str, query: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetch(query)
    finally:
        await conn.close()


async def test_two_replicas_write_the_single_process_manifest(database_url, store, sim) -> None:
    policy = _policy(sim)
    a = await _replica(database_url, store, policy)
    b = await _replica(database_url, store, policy)
    a.start()
    b.start()
    try:
        fanned = await _fanned(a, policy)
    finally:
        await a.close()
        await b.close()
    assert fanned == await _single_bytes(policy)
    assert len(list(ManifestReader(io.BytesIO(fanned)))) == OBJECTS
    # The job, its items and its segments are gone.
    assert await _rows(database_url, "SELECT * FROM reference_fanout_jobs") == []
    assert not list(Path(store.local_path("~fanout") or "").glob("*/*"))


async def test_a_small_reference_is_listed_by_the_replica_called(database_url, store, sim) -> None:
    policy = _policy(sim)
    a = await _replica(database_url, store, policy, min_objects=OBJECTS * 10)
    try:
        # No claim loop runs: a fanned-out listing would wait forever.
        fanned = await asyncio.wait_for(_fanned(a, policy), 60)
    finally:
        await a.close()
    assert fanned == await _single_bytes(policy)


async def test_an_expired_claim_is_taken_over_and_the_old_claim_changes_nothing(database_url, store, sim) -> None:
    policy = _policy(sim)
    dead = await _replica(database_url, store, policy, lease_s=1.0)  # claims, then never renews nor lists
    live = await _replica(database_url, store, policy)
    coordinator = asyncio.create_task(_fanned(live, policy))
    try:
        claim = None
        while claim is None:
            claim = await dead._claim()
            await asyncio.sleep(0.01)
        live.start()  # only now: the dead replica holds an item the live one must wait out
        fanned = await asyncio.wait_for(coordinator, 120)
        # The dead replica finishing late is ignored (its claim is not the item's).
        await dead._finish(claim, "done", objects=1, size=1)
    finally:
        coordinator.cancel()
        await live.close()
        await dead.close()
    assert fanned == await _single_bytes(policy)


async def test_too_many_objects_fails_like_the_single_process_listing(database_url, store, sim) -> None:
    policy = _policy(sim)
    a = await _replica(database_url, store, policy)
    a.start()
    try:
        with pytest.raises(TooManyObjects):
            await _fanned(a, policy, max_objects=OBJECTS - 1)
    finally:
        await a.close()
    assert await _rows(database_url, "SELECT * FROM reference_fanout_jobs") == []


async def test_a_replica_refuses_a_bucket_its_policy_does_not_allow(database_url, store, sim) -> None:
    policy = _policy(sim)
    coordinator = await _replica(database_url, store, policy)
    other = await _replica(database_url, store, ReferencePolicy(frozenset({"elsewhere"}), policy.s3))
    other.start()
    try:
        # The replica's answer reaches the caller as the same domain error, not UNAVAILABLE.
        with pytest.raises(PermissionDenied, match="not one this replica may list"):
            await asyncio.wait_for(_fanned(coordinator, policy), 60)
    finally:
        await other.close()
        await coordinator.close()


async def test_a_stale_job_is_swept_with_its_segments(database_url, store, sim) -> None:
    policy = _policy(sim)
    a = await _replica(database_url, store, policy)
    job = uuid.uuid4()
    key = f"~fanout/{job}/00000-{uuid.uuid4()}"
    await store.put_bytes(key, b"segment")
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "INSERT INTO reference_fanout_jobs (id, spec, coordinator, heartbeat_at) "
            "VALUES ($1, $2, 'gone', now() - interval '1 hour')",
            job,
            json.dumps({}),
        )
        await conn.execute(
            "INSERT INTO reference_fanout_items (job_id, item, units, state, segment_key) "
            "VALUES ($1, 0, '[]', 'done', $2)",
            job,
            key,
        )
    finally:
        await conn.close()
    try:
        await a._sweep_stale()
    finally:
        await a.close()
    assert await _rows(database_url, "SELECT * FROM reference_fanout_items") == []
    assert not await store.exists(key)


class _StalledWriter:
    """A manifest writer whose first append waits for the test: a merge as long as it likes."""

    def __init__(self, inner: ManifestWriter) -> None:
        self.inner = inner
        self.merging = threading.Event()
        self.go_on = threading.Event()

    def add_many(self, batch: object) -> None:
        if not self.merging.is_set():
            self.merging.set()
            self.go_on.wait(120)
        self.inner.add_many(batch)


async def test_a_merge_longer_than_the_stale_age_keeps_its_job(database_url, store, sim) -> None:
    policy = _policy(sim)
    a = await _replica(database_url, store, policy, lease_s=1.5)  # heartbeat every 0.5 s
    sweeper = await _replica(database_url, store, policy, lease_s=0.3)  # sweeps jobs silent for 3 s
    a.start()
    buf = io.BytesIO()
    writer = _StalledWriter(ManifestWriter(buf, "md5", check_paths=True))
    merge = asyncio.create_task(
        write_s3_reference(URI, writer, session_config=policy.s3, fan_out=a, max_objects=OBJECTS)
    )
    try:
        assert await asyncio.to_thread(writer.merging.wait, 120)
        await asyncio.sleep(4.5)  # the merge has now lasted longer than the sweeper's stale age
        await sweeper._sweep_stale()
        assert len(await _rows(database_url, "SELECT * FROM reference_fanout_jobs")) == 1
        writer.go_on.set()
        await asyncio.wait_for(merge, 120)
    finally:
        writer.go_on.set()
        merge.cancel()
        await a.close()
        await sweeper.close()
    writer.inner.close()
    assert buf.getvalue() == await _single_bytes(policy)
