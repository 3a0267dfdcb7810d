"""The sweep's guards against deleting a live byte: a failing sort, strangers at the store's root,
a refresh after the listing (S3), and a lost or contended sweep lock."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path
from typing import Any

import asyncpg
import boto3
import pytest
from support.gc_store import GRACE, PURGE, age_all, local_server, log, managed_keys, sql, sweep, verify

from depot.services.gc import extsort
from depot.services.gc.sweep import BlobCollector, SweepResult
from depot.services.manifest.public import BlobStore, open_store
from depot.services.manifest.store import S3Options

_SWEEP_LOCK = 0x6465706F7473  # sweep.py's


@pytest.fixture
def local(tmp_path: Path, database_url: str) -> Any:
    yield from local_server(tmp_path, database_url)


def _garbage_in_two_entities(local: Any, database_url: str, blobs: Path) -> set[str]:
    log(local, "gone", {"g.bin": os.urandom(50_000)})
    log(local, "gone", {"g.bin": os.urandom(50_000)}, entity="team-b")
    log(local, "kept", {"k.bin": os.urandom(50_000)})
    log(local, "kept", {"k.bin": os.urandom(50_000)}, entity="team-b")
    asyncio.run(sql(database_url, PURGE, "gone"))
    age_all(blobs)
    return managed_keys(blobs)


class _Wrapped:
    """A store with a hook before one of its calls (the rest pass through)."""

    def __init__(self, inner: BlobStore) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


async def _run(database_url: str, store: Any, work: Path, entity: str = "") -> SweepResult:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        return await BlobCollector(pool, store, GRACE, work).run(entity, dry_run=False)  # type: ignore[arg-type]
    finally:
        await pool.close()


async def sweep_one(database_url: str, blobs: Path, work: Path, entity: str) -> SweepResult:
    store = await open_store(blobs.as_uri())
    try:
        return await _run(database_url, store, work, entity)
    finally:
        await store.aclose()


def test_a_sort_write_failing_mid_mark_stops_every_delete(local, database_url, tmp_path, monkeypatch) -> None:
    """A run file that cannot be written (a full work dir) while one manifest is read: the keys
    it lost may be any entity's, so no entity is swept (not only the one being read)."""
    blobs = tmp_path / "blobs"
    before = _garbage_in_two_entities(local, database_url, blobs)
    monkeypatch.setattr(extsort, "RUN_KEYS", 1)  # every key is a run: the next write is known
    work = tmp_path / "work"

    class FailsNextWrite(_Wrapped):
        def local_path(self, key: str) -> Any:
            # Called as each root manifest is read: the first time, the
            # next run file's name is taken by a directory, so its write fails.
            (pass_dir,) = work.iterdir()
            runs = len(list(pass_dir.iterdir()))
            if runs == 1:
                (pass_dir / f"run-{runs:08d}").mkdir()
            return self._inner.local_path(key)

    async def run() -> SweepResult:
        store = FailsNextWrite(await open_store(blobs.as_uri()))
        try:
            return await _run(database_url, store, work)
        finally:
            await store.aclose()

    result = asyncio.run(run())
    assert len(result.errors) == 1 and "sort failed" in result.errors[0]
    assert result.blobs_deleted == result.manifests_deleted == 0
    assert managed_keys(blobs) == before
    assert list(work.iterdir()) == []
    monkeypatch.undo()
    # The next pass, with room to write, frees both entities' garbage.
    done = asyncio.run(sweep(database_url, blobs.as_uri(), work))
    assert (done.blobs_deleted, done.manifests_deleted, done.errors) == (2, 2, [])
    verify(local, "team/p/kept:v0", tmp_path / "k")
    verify(local, "team-b/p/kept:v0", tmp_path / "kb")


def test_a_folder_at_the_root_that_is_no_entity_is_never_swept(local, database_url, tmp_path) -> None:
    """A store at a bucket's (or a disk's) root shares it with other data: a folder shaped like
    an entity, with old unmarked keys under blobs/ and manifests/, is not one unless metadata says so."""
    blobs = tmp_path / "blobs"
    log(local, "gone", {"g.bin": os.urandom(50_000)})
    asyncio.run(sql(database_url, PURGE, "gone"))
    strangers = [
        "datasets/blobs/xxh3_128/ab/ab" + "0" * 30,
        "datasets/manifests/cd/cd" + "0" * 62,
        "team-c/blobs/xxh3_128/ef/ef" + "0" * 30,
    ]
    for key in strangers:
        (blobs / key).parent.mkdir(parents=True, exist_ok=True)
        (blobs / key).write_bytes(b"someone else's")
    age_all(blobs)
    result = asyncio.run(sweep(database_url, blobs.as_uri(), tmp_path / "work"))
    assert (result.blobs_deleted, result.manifests_deleted, result.errors) == (1, 1, [])
    for key in strangers:
        assert (blobs / key).read_bytes() == b"someone else's"
    # Named alone, it is no entity either.
    alone = asyncio.run(sweep_one(database_url, blobs, tmp_path / "work", "datasets"))
    assert alone.blobs_scanned == 0 and alone.blobs_deleted == 0
    assert all((blobs / key).exists() for key in strangers)


def test_a_second_sweep_while_one_holds_the_lock_does_nothing(local, database_url, tmp_path) -> None:
    blobs = tmp_path / "blobs"
    before = _garbage_in_two_entities(local, database_url, blobs)
    other = tmp_path / "work" / "depot-gc-mark-1-running"
    other.mkdir(parents=True)

    async def run() -> SweepResult:
        holder = await asyncpg.connect(database_url)
        try:
            assert await holder.fetchval("SELECT pg_try_advisory_lock($1)", _SWEEP_LOCK)
            return await sweep(database_url, blobs.as_uri(), tmp_path / "work")
        finally:
            await holder.close()

    result = asyncio.run(run())
    assert result.errors == ["another blob sweep holds the sweep lock: nothing swept"]
    assert managed_keys(blobs) == before
    assert other.is_dir()  # the running pass's work dir is its own
    done = asyncio.run(sweep(database_url, blobs.as_uri(), tmp_path / "work"))
    assert (done.blobs_deleted, done.errors) == (2, [])
    assert not other.exists()  # an earlier pass's, removed by the lock holder


def test_a_sweep_whose_lock_session_dies_stops_deleting(local, database_url, tmp_path) -> None:
    """The session holding the lock is gone (its connection dropped): another pass may start,
    so this one deletes nothing more."""
    blobs = tmp_path / "blobs"
    before = _garbage_in_two_entities(local, database_url, blobs)

    class KillsTheLockSession(_Wrapped):
        killed = 0

        def list_sorted(self, prefix: str) -> Any:
            if prefix.endswith("/blobs/"):
                self.killed += _terminate_lock_holder(database_url)
            return self._inner.list_sorted(prefix)

    store: Any = None

    async def run() -> SweepResult:
        nonlocal store
        store = KillsTheLockSession(await open_store(blobs.as_uri()))
        try:
            return await _run(database_url, store, tmp_path / "work")
        finally:
            await store.aclose()

    result = asyncio.run(run())
    assert store.killed == 1
    assert len(result.errors) == 1 and result.errors[0].startswith("sweep stopped:")
    assert result.blobs_deleted == result.manifests_deleted == 0
    assert managed_keys(blobs) == before


def _terminate_lock_holder(database_url: str) -> int:
    """Ends the session holding the sweep lock; returns how many did (one)."""
    killed: list[int] = []

    async def kill() -> None:
        conn = await asyncpg.connect(database_url)
        try:
            holders = await conn.fetch(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = $1::oid"
                " AND objid = $2::oid",
                _SWEEP_LOCK >> 32,
                _SWEEP_LOCK & 0xFFFFFFFF,
            )
            for row in holders:
                await conn.execute("SELECT pg_terminate_backend($1)", row["pid"])
            killed.append(len(holders))
        finally:
            await conn.close()

    # From a thread of its own: the caller is inside the sweep's event loop.
    t = threading.Thread(target=lambda: asyncio.run(kill()))
    t.start()
    t.join()
    return killed[0]


def test_s3_a_key_refreshed_after_its_listing_is_not_deleted(tmp_path, s3_endpoint, s3_bucket) -> None:
    """The S3 window: listed old, then a dedup refresh (CopyObject) lands before the delete
    request. The delete re-reads LastModified of keys listed over a second before, and keeps it."""
    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    live = "team/blobs/xxh3_128/ab/ab" + "0" * 30
    dead = "team/blobs/xxh3_128/cd/cd" + "0" * 30
    for key in (live, dead):
        s3.put_object(Bucket=s3_bucket, Key=f"depot/{key}", Body=b"bytes")

    async def run() -> Any:
        store = await open_store(
            f"s3://{s3_bucket}/depot", staging_dir=tmp_path / "st", s3=S3Options(endpoint_url=s3_endpoint)
        )
        try:
            listed_at = time.time()
            listed = [o async for page in store.list_sorted("team/blobs/") for o in page]
            assert [o.key for o in listed] == [live, dead]
            cutoff = max(o.mtime for o in listed) + 0.5  # both listed as older than the cutoff
            time.sleep(1.1)  # the refresh lands strictly after the cutoff
            assert await store.refresh_many([live], time.time()) == [True]
            return await store.delete_many([live, dead], cutoff, listed=listed_at)
        finally:
            await store.aclose()

    done = asyncio.run(run())
    assert done.refreshed == [live] and done.keys == [dead] and done.errors == []
    left = {o["Key"] for o in s3.list_objects_v2(Bucket=s3_bucket, Prefix="depot/").get("Contents", [])}
    assert left == {f"depot/{live}"}
