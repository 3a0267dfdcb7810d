"""The collector refuses to sweep with a grace period shorter than the manifest service's.

The manifest service refreshes a blob it answers "present" only once older
than half ITS grace; a GC sweeping younger blobs could delete one a commit
is about to rely on (review finding F5).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from support.gc_store import GRACE, PURGE, age_all, local_server, log, managed_keys, sql
from support.servers import ServerThread

from depot.services.common.config import ConfigError
from depot.services.gc.collector import Collector
from depot.services.gc.config import GcSettings
from depot.services.gc.report import Report
from depot.services.gc.sweep import BlobCollector
from depot.services.manifest.public import open_store
from depot.services.metadata import db


@pytest.fixture
def local(tmp_path: Path, database_url: str) -> Iterator[ServerThread]:
    yield from local_server(tmp_path, database_url)


async def _pass(database_url: str, blobs: Path, work: Path, manifest_grace: timedelta | None) -> Report:
    pool = await db.create_pool(database_url, min_size=1, max_size=3)
    store = await open_store(blobs.as_uri())
    try:
        sweeper = BlobCollector(pool, store, GRACE, work)
        grace = timedelta(seconds=GRACE)
        return await Collector(pool, grace=grace, sweeper=sweeper, manifest_grace=manifest_grace).run("", force=True)
    finally:
        await store.aclose()
        await pool.close()


def test_a_gc_grace_shorter_than_the_manifest_services_refuses_the_sweep(local, database_url, tmp_path) -> None:
    blobs = tmp_path / "blobs"
    log(local, "gone", {"a.bin": os.urandom(100_000)})
    asyncio.run(sql(database_url, PURGE, "gone"))
    age_all(blobs)
    before = managed_keys(blobs)

    refused = asyncio.run(_pass(database_url, blobs, tmp_path / "work", timedelta(seconds=2 * GRACE)))
    assert refused.ran and refused.blobs_deleted == 0
    (error,) = refused.errors
    assert error.startswith("mark, sweep: refused:")
    assert "DEPOT_GRACE_PERIOD_S = 60 s" in error and "DEPOT_MANIFEST_GRACE_PERIOD_S = 120 s" in error
    assert [p.name for p in refused.phases] == ["expire", "purge", "purge_pending", "prune"]
    assert managed_keys(blobs) == before

    # Equal graces (or none told): the sweep runs.
    for manifest_grace in (timedelta(seconds=GRACE), None):
        done = asyncio.run(_pass(database_url, blobs, tmp_path / "work", manifest_grace))
        assert done.errors == []
    assert len(before - managed_keys(blobs)) == 2


def test_the_manifest_grace_is_read_from_the_environment() -> None:
    assert GcSettings.from_env({}).manifest_grace is None
    told = GcSettings.from_env({"DEPOT_GRACE_PERIOD_S": "86400", "DEPOT_MANIFEST_GRACE_PERIOD_S": "604800"})
    assert (told.grace, told.manifest_grace) == (timedelta(days=1), timedelta(days=7))
    assert GcSettings.from_env(told.to_env()) == told
    with pytest.raises(ConfigError, match="DEPOT_MANIFEST_GRACE_PERIOD_S"):
        GcSettings.from_env({"DEPOT_MANIFEST_GRACE_PERIOD_S": "-1"})
