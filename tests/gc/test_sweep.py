"""The blob collector against a real server, PostgreSQL and store: what it deletes and what it never does."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import boto3
import pytest
from support.entities import create_team
from support.gc_store import (
    GRACE,
    OLD,
    PURGE,
    SOFT_DELETE,
    age_all,
    local_server,
    log,
    managed_keys,
    sql,
    sweep,
    verify,
)
from support.servers import ServerThread, make_config

import depot
from depot.services.gc.sweep import BlobCollector, SweepResult
from depot.services.manifest.public import BlobStore, open_store
from depot.services.manifest.store import S3Options


@pytest.fixture
def local(tmp_path: Path, database_url: str) -> Iterator[ServerThread]:
    yield from local_server(tmp_path, database_url)


def test_sweep_frees_what_no_version_names_and_keeps_the_rest(local, database_url, tmp_path) -> None:
    blobs = tmp_path / "blobs"
    shared = os.urandom(200_000)
    log(local, "gone", {"only-gone.bin": os.urandom(150_000), "shared.bin": shared})
    log(local, "kept", {"shared.bin": shared, "own.bin": os.urandom(120_000)})
    log(local, "kept", {"same.bin": shared}, entity="team-b")  # the same bytes in another entity
    log(local, "deleted", {"deleted.bin": os.urandom(100_000)})
    asyncio.run(sql(database_url, PURGE, "gone"))
    asyncio.run(sql(database_url, SOFT_DELETE, "deleted"))
    # Outside the managed namespace, even under an entity's directory.
    stray = blobs / "team" / "user-data" / "x.bin"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"not ours")
    age_all(blobs)
    before = managed_keys(blobs)

    dry = asyncio.run(sweep(database_url, (blobs).as_uri(), tmp_path / "work", dry_run=True))
    assert (dry.blobs_deleted, dry.manifests_deleted, dry.errors) == (1, 1, [])
    assert managed_keys(blobs) == before

    done = asyncio.run(sweep(database_url, (blobs).as_uri(), tmp_path / "work"))
    assert (done.blobs_deleted, done.manifests_deleted, done.errors) == (1, 1, [])
    assert done.bytes_freed > 150_000
    assert done.blobs_scanned == len(before)
    assert len(before - managed_keys(blobs)) == 2
    assert stray.read_bytes() == b"not ours"
    verify(local, "team/p/kept:v0", tmp_path / "k")
    verify(local, "team-b/p/kept:v0", tmp_path / "kb")
    # The version deleted in its grace period keeps its bytes until it is purged.
    asyncio.run(
        sql(
            database_url,
            "UPDATE versions SET state = 'committed', delete_time = NULL,"
            " purge_time = NULL, delete_reason = NULL WHERE state = 'deleted'",
        )
    )
    verify(local, "team/p/deleted:v0", tmp_path / "d")
    asyncio.run(sql(database_url, PURGE, "deleted"))
    again = asyncio.run(sweep(database_url, (blobs).as_uri(), tmp_path / "work"))
    assert (again.blobs_deleted, again.manifests_deleted) == (1, 1)
    # Idempotent: nothing left to free.
    last = asyncio.run(sweep(database_url, (blobs).as_uri(), tmp_path / "work"))
    assert (last.blobs_deleted, last.manifests_deleted, last.errors) == (0, 0, [])


def test_young_keys_survive_and_a_commit_during_the_sweep_verifies(local, database_url, tmp_path) -> None:
    """An upload whose version commits while the pass runs: its blobs are
    younger than the grace period, and the commit lands after the roots were read."""
    blobs = tmp_path / "blobs"
    log(local, "old", {"a.bin": os.urandom(100_000)})
    asyncio.run(sql(database_url, PURGE, "old"))
    age_all(blobs)
    data = {"new.bin": os.urandom(300_000), "small.txt": b"tiny"}

    class CommitsMidPass:
        """The store, with the commit of an upload made as the sweep starts listing blobs."""

        def __init__(self, inner: BlobStore) -> None:
            self._inner = inner
            self.committed: Any = None

        def __getattr__(self, name: str) -> Any:
            return getattr(self._inner, name)

        def list_sorted(self, prefix: str) -> AsyncIterator[Any]:
            if prefix.endswith("/blobs/") and self.committed is None:
                self.committed = log(local, "fresh", data)  # blocking: the pass waits meanwhile
            return self._inner.list_sorted(prefix)

    async def run() -> tuple[SweepResult, Any]:
        pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
        store = CommitsMidPass(await open_store(blobs.as_uri()))
        try:
            result = await BlobCollector(pool, store, GRACE, tmp_path / "work").run("", dry_run=False)  # type: ignore[arg-type]
            return result, store.committed
        finally:
            await pool.close()

    result, committed = asyncio.run(run())
    assert committed is not None and result.errors == []
    assert result.blobs_deleted == 1 and result.manifests_deleted == 1
    verify(local, "team/p/fresh:v0", tmp_path / "f")


def test_an_old_blob_found_present_is_refreshed_and_survives(local, database_url, tmp_path) -> None:
    """The dedup race: bytes a purged version left are found present by the
    next upload of the same file, then a sweep runs before that version commits."""
    blobs = tmp_path / "blobs"
    payload = os.urandom(250_000)
    log(local, "first", {"p.bin": payload})
    asyncio.run(sql(database_url, PURGE, "first"))
    age_all(blobs)
    # The same bytes again: FindMissingBlobs finds them stored (no upload).
    log(local, "second", {"p.bin": payload})
    result = asyncio.run(sweep(database_url, blobs.as_uri(), tmp_path / "work"))
    assert result.blobs_deleted == 0 and result.errors == []
    verify(local, "team/p/second:v0", tmp_path / "s")


def test_a_refresh_between_listing_and_delete_keeps_the_key(tmp_path) -> None:
    """The last step of the race, on a local store: listed old, touched by a
    dedup check, then deleted: the move aside sees the touch and puts it back."""
    root = tmp_path / "blobs"
    key = "team/blobs/xxh3_128/ab/ab" + "0" * 30
    path = root / key
    path.parent.mkdir(parents=True)
    path.write_bytes(b"live")
    os.utime(path, (OLD, OLD))

    async def run() -> tuple[Any, list[bool], Any]:
        store = await open_store(root.as_uri())
        listed = [o async for page in store.list_sorted("team/blobs/") for o in page]
        assert [o.key for o in listed] == [key] and listed[0].mtime < time.time() - GRACE
        found = await store.refresh_many([key], time.time() - GRACE / 2)
        deleted = await store.delete_many([key], time.time() - GRACE)
        gone = await store.delete_many(["team/blobs/xxh3_128/cd/cd" + "0" * 30], time.time())
        return deleted, found, gone

    deleted, found, gone = asyncio.run(run())
    assert found == [True]
    assert deleted.keys == [] and deleted.refreshed == [key]
    assert path.read_bytes() == b"live"
    assert gone.keys == ["team/blobs/xxh3_128/cd/cd" + "0" * 30]  # already gone is deleted


def test_s3_store_sweeps_its_prefix_only(tmp_path, database_url, s3_endpoint, s3_bucket) -> None:
    """An S3 store shares its bucket with the user's objects, some named by
    references: only ``<prefix>/<entity>/{blobs,manifests}/`` is ever swept."""
    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    user = {"data/a.txt": b"a", "data/b.txt": b"bb", "depot-x/team/blobs/k": b"looks like ours", "depot/team/x": b"x"}
    for k, v in user.items():
        s3.put_object(Bucket=s3_bucket, Key=k, Body=v)
    store_url = f"s3://{s3_bucket}/depot"
    cfg = make_config(
        tmp_path / "data",
        database_url,
        store_url,
        DEPOT_S3_ENDPOINT_URL=s3_endpoint,
        DEPOT_REFERENCE_BUCKETS=s3_bucket,
        DEPOT_GRACE_PERIOD_S=str(GRACE),
    )
    srv = ServerThread(cfg).start()
    try:
        create_team(srv.address, srv.admin_key, "team")
        with depot.init(entity="team", project="p", address=srv.address, api_key=srv.admin_key) as run:
            art = depot.Artifact("refs", type="dataset")
            art.add_reference(f"s3://{s3_bucket}/data")
            with art.new_file("own.bin", mode="wb") as f:
                f.write(os.urandom(100_000))
            run.log_artifact(art).wait()
        log(srv, "gone", {"g.bin": os.urandom(100_000)})
        asyncio.run(sql(database_url, PURGE, "refs"))
        asyncio.run(sql(database_url, PURGE, "gone"))
        # moto's LastModified cannot be set back: a grace of one second, waited out.
        time.sleep(1.1)

        async def sweep_s3() -> SweepResult:
            pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
            store = await open_store(store_url, staging_dir=tmp_path / "st", s3=S3Options(endpoint_url=s3_endpoint))
            try:
                return await BlobCollector(pool, store, 1.0, tmp_path / "work").run("team", dry_run=False)
            finally:
                await store.aclose()
                await pool.close()

        result = asyncio.run(sweep_s3())
        assert result.errors == []
        # Both files' blobs; the manifests of both versions (and the listing
        # of the reference, stored as a manifest of its own while it was built).
        assert result.blobs_deleted == 2 and result.manifests_deleted >= 2
        left = {o["Key"] for o in s3.list_objects_v2(Bucket=s3_bucket).get("Contents", [])}
        assert set(user) <= left
        assert not any("/blobs/" in k or "/manifests/" in k for k in left - set(user))
        for k, v in user.items():
            assert s3.get_object(Bucket=s3_bucket, Key=k)["Body"].read() == v
    finally:
        srv.stop()
