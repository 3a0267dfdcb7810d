"""One RunNow on the all-in-one does the whole lifecycle: purge past purge_time, then the blob sweep.

The version is deleted through the SDK; its purge_time and the store's file
ages are moved back instead of waiting out the grace period.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from support.gc_store import age_all, local_server, log, managed_keys, sql, verify
from support.servers import ServerThread

import depot
from depot.gc.v1 import gc_pb2 as gpb
from depot.gc.v1 import gc_pb2_grpc


@pytest.fixture
def local(tmp_path: Path, database_url: str) -> Iterator[ServerThread]:
    yield from local_server(tmp_path, database_url)


def _run_now(server: ServerThread, dry_run: bool = False) -> gpb.CollectionReport:
    with grpc.insecure_channel(server.address) as channel:
        return gc_pb2_grpc.GcServiceStub(channel).RunNow(
            gpb.RunNowRequest(dry_run=dry_run), metadata=(("authorization", f"Bearer {server.admin_key}"),)
        )


def test_run_now_purges_then_sweeps_what_the_purged_version_alone_held(local: ServerThread, tmp_path: Path) -> None:
    blobs = tmp_path / "blobs"
    log(local, "keep", {"shared": b"shared bytes", "k": b"kept alone"})
    log(local, "drop", {"shared": b"shared bytes", "d": b"dropped alone, 29 bytes long"})
    before = managed_keys(blobs)
    depot.Api(local.address, local.admin_key).artifact("team/p/drop:v0").delete()
    # Within the grace nothing is purged, so nothing it holds is swept.
    age_all(blobs)
    first = _run_now(local)
    assert (first.versions_purged, first.blobs_deleted, first.manifests_deleted) == (0, 0, 0)
    assert managed_keys(blobs) == before
    asyncio.run(sql(local.config.database_url, "UPDATE versions SET purge_time = now() WHERE state = 'deleted'"))
    dry = _run_now(local, dry_run=True)
    assert (dry.versions_purged, dry.blobs_deleted) == (1, 0)  # the blobs are still referenced before the purge
    report = _run_now(local)
    assert report.ran and list(report.errors) == []
    assert [p.name for p in report.phases] == ["expire", "purge", "purge_pending", "mark", "sweep", "prune"]
    # The purged version's own blob and its manifest go; the shared blob stays.
    assert (report.versions_purged, report.blobs_deleted, report.manifests_deleted) == (1, 1, 1)
    assert report.bytes_freed >= len(b"dropped alone, 29 bytes long")
    assert len(before - managed_keys(blobs)) == 2
    verify(local, "team/p/keep:v0", tmp_path / "out")
    with grpc.insecure_channel(local.address) as channel:
        status = gc_pb2_grpc.GcServiceStub(channel).GetStatus(
            gpb.GetStatusRequest(), metadata=(("authorization", f"Bearer {local.admin_key}"),)
        )
    assert status.last_passes[0].blobs_deleted == 1 and status.last_passes[0].blobs_scanned >= 4
