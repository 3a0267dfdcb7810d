"""include_manifests and the dedup age rule: copied entries' blobs, and the
included manifest itself, are refreshed like streamed ones (docs/gc.md).

A manifest built from an unreferenced manifest older than the grace period,
after a pass has read its roots, must not name blobs that pass frees: the
build refreshes them (so the sweep spares them) or, if they are gone
already, is refused.
"""

from __future__ import annotations

import asyncio
import base64
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import pytest
from support.gc_store import GRACE, OLD, PURGE, age_all, local_server, managed_keys, sql, verify
from support.servers import ServerThread
from support.stubs import Stubs, b64_xxh

from depot._exceptions import from_rpc_error
from depot.common.v1 import common_pb2
from depot.manifest.v1 import manifest_pb2 as mpb
from depot.metadata.v1 import metadata_pb2 as pb
from depot.services.gc.sweep import BlobCollector
from depot.services.manifest.public import open_store

PROJECT = "entities/team/projects/p"


@pytest.fixture
def local(tmp_path: Path, database_url: str) -> Iterator[ServerThread]:
    yield from local_server(tmp_path, database_url)


@pytest.fixture
def stubs(local: ServerThread) -> Iterator[Stubs]:
    with grpc.insecure_channel(local.address) as ch:
        yield Stubs(ch, local.admin_key)


def _blob(root: Path, data: bytes) -> Path:
    h = base64.b64decode(b64_xxh(data)).hex()
    return root / "team" / "blobs" / "xxh3_128" / h[:2] / h


def _manifest(root: Path, manifest_id: str) -> Path:
    return root / "team" / "manifests" / manifest_id[:2] / manifest_id


def _entry(path: str, data: bytes) -> mpb.ManifestEntry:
    return mpb.ManifestEntry(path=path, algorithm="xxh3_128", digest=b64_xxh(data), size=len(data))


def _build(stubs: Stubs, include: list[str], files: dict[str, bytes] | None = None) -> common_pb2.ManifestRef:
    """CreateManifest including stored manifests, with ``files`` uploaded and streamed beside them."""
    entries = []
    for path, data in (files or {}).items():
        stubs.upload("team", data)
        entries.append(_entry(path, data))

    def reqs() -> Iterator[mpb.CreateManifestRequest]:
        header = mpb.ManifestHeader(entity="team", digest_algorithm="xxh3_128", include_manifests=include)
        yield mpb.CreateManifestRequest(header=header)
        if entries:
            yield mpb.CreateManifestRequest(batch=mpb.EntryBatch(entries=entries))

    return stubs.man.CreateManifest(reqs(), metadata=stubs.md)


def _commit(stubs: Stubs, name: str, ref: common_pb2.ManifestRef) -> pb.ArtifactVersion:
    req = pb.CreateArtifactVersionRequest(parent=PROJECT, artifact=name, type="dataset", manifest=ref)
    return stubs.artifacts.CreateArtifactVersion(req, metadata=stubs.md)


def _fresh(path: Path) -> bool:
    """Modified since the test aged the store: within the grace period of now."""
    return path.stat().st_mtime > time.time() - GRACE


def test_including_an_old_manifest_refreshes_it_and_its_blobs(local, stubs, tmp_path) -> None:
    root = tmp_path / "blobs"
    files = {f"f{i:02d}": os.urandom(1000 + i) for i in range(5)}
    old = stubs.log("team", "p", "old", files)
    # Alone (the included manifest is reused as is), then merged with a streamed file.
    for extra in ({}, {"z-new": os.urandom(500)}):
        age_all(root)
        ref = _build(stubs, [old.manifest_id], extra)
        assert (ref.manifest_id == old.manifest_id) == (not extra)
        assert ref.file_count == len(files) + len(extra)
        assert all(_fresh(_blob(root, data)) for data in files.values())
        assert _fresh(_manifest(root, old.manifest_id))
        assert _fresh(_manifest(root, ref.manifest_id))


def test_an_included_manifest_whose_blob_is_gone_refuses_the_build(local, stubs, tmp_path) -> None:
    root = tmp_path / "blobs"
    files = {"a": os.urandom(800), "b": os.urandom(900)}
    old = stubs.log("team", "p", "old", files)
    _blob(root, files["b"]).unlink()
    before = managed_keys(root)
    for extra in ({}, {"c": os.urandom(700)}):
        with pytest.raises(grpc.RpcError) as e:
            _build(stubs, [old.manifest_id], extra)
        assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert old.manifest_id in e.value.details() and "no longer stored" in e.value.details()
        err = from_rpc_error(e.value)
        assert (err.reason, err.field) == ("BLOB_MISSING", "header.include_manifests[0]")
    # No manifest was stored (only the streamed file's blob was uploaded).
    assert [k for k in managed_keys(root) - before if "/manifests/" in f"/{k}"] == []


class _BuildBeforeSweep:
    """A store whose first listing of the entity's blobs runs ``build`` first:
    a manifest built after the pass read its roots, before it lists."""

    def __init__(self, inner: Any, build: Callable[[], None]) -> None:
        self._inner = inner
        self._build: Callable[[], None] | None = build

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def list_sorted(self, prefix: str) -> AsyncIterator[Any]:
        if prefix == "team/blobs/" and self._build is not None:
            self._build()  # blocks this loop only; the server runs on its own thread
            self._build = None
        return self._inner.list_sorted(prefix)


async def _pass(database_url: str, root: Path, work: Path, build: Callable[[], None]) -> Any:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    store = await open_store(root.as_uri())
    try:
        return await BlobCollector(pool, _BuildBeforeSweep(store, build), GRACE, work).run("", dry_run=False)
    finally:
        await store.aclose()
        await pool.close()


def test_a_pass_spares_what_a_manifest_built_mid_pass_includes(local, stubs, database_url, tmp_path) -> None:
    root = tmp_path / "blobs"
    files = {f"f{i}": os.urandom(2000 + i) for i in range(3)}
    old = stubs.log("team", "p", "old", files)
    doomed = stubs.log("team", "p", "doomed", {"d": os.urandom(3000)})
    # Neither version remains: their manifests are no roots, and every key is old.
    asyncio.run(sql(database_url, PURGE, "old"))
    asyncio.run(sql(database_url, PURGE, "doomed"))
    age_all(root)
    assert _manifest(root, old.manifest_id).stat().st_mtime == OLD
    refs: dict[str, common_pb2.ManifestRef] = {}

    def build() -> None:
        refs["alone"] = _build(stubs, [old.manifest_id])
        refs["merged"] = _build(stubs, [old.manifest_id], {"new": os.urandom(1500)})

    done = asyncio.run(_pass(database_url, root, tmp_path / "work", build))
    assert done.errors == []
    # What nothing needs is freed: the doomed version's blob and manifest.
    assert (done.blobs_deleted, done.manifests_deleted) == (1, 1)
    assert not _manifest(root, doomed.manifest_id).exists()
    # The versions committed after the pass read every byte they name.
    for name, ref in refs.items():
        _commit(stubs, name, ref)
        verify(local, f"team/p/{name}:v0", tmp_path / name)
