"""The local store's staging area is no entity's namespace (issue 8, round 2, item 4).

An entity's blobs and manifests live under ``{root}/{entity}/``; uploads are
staged in a directory of the same root before their atomic rename. The
staging directory was ``.tmp`` — a valid entity name — so entity ``.tmp``'s
data lived inside the staging area, and clearing stale staged files (after
a crash, by an operator) deleted that entity's blobs. Staging is now under a
name the entity-name rule refuses.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import grpc
import pytest
from support.entities import create_team
from support.servers import ServerThread
from support.stubs import Stubs, b64_xxh

from depot.manifest.v1 import manifest_pb2 as mpb
from depot.services.common.errors import InvalidArgument
from depot.services.manifest.blobs import BlobId, blob_key
from depot.services.manifest.manifests import manifest_key
from depot.services.manifest.store import LocalBlobStore, check_key
from depot.services.metadata import names

ENTITY = ".tmp"  # allowed by the name rule, like any [A-Za-z0-9_.-]{1,128}


def test_the_staging_directory_is_no_entity_name(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    staging = Path(store.tmp)
    assert staging.parent == store.root and staging.is_dir()
    with pytest.raises(InvalidArgument):
        names.check_part(staging.name, "entity", "entity name")
    # Every key an entity's data can have lies outside it.
    blob = BlobId("xxh3_128", b64_xxh(b"x"))
    for key in (blob_key(ENTITY, blob), manifest_key(ENTITY, "0" * 64)):
        assert not Path(store._path(key)).is_relative_to(staging)
    # And no key reaches into it.
    with pytest.raises(InvalidArgument):
        check_key(f"{staging.name}/blobs/xxh3_128/00/{'0' * 32}")


def test_staged_files_are_not_an_entitys_data(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = LocalBlobStore(tmp_path)
        key = blob_key(ENTITY, BlobId("xxh3_128", b64_xxh(b"x")))
        await store.put_bytes(key, b"x")
        # What a crash-recovery sweep of stale staged uploads does.
        shutil.rmtree(store.tmp)
        assert await store.exists(key)
        # The staging directory is made again when the store opens.
        await LocalBlobStore(tmp_path).put_bytes(key, b"x")

    asyncio.run(scenario())


def test_entity_named_like_the_old_staging_dir_keeps_its_blobs(server: ServerThread, tmp_path: Path) -> None:
    create_team(server.address, server.admin_key, ENTITY)
    data = b"kept" * 100
    with grpc.insecure_channel(server.address) as ch:
        s = Stubs(ch, server.admin_key)
        s.upload(ENTITY, data)
        staging = Path(LocalBlobStore(tmp_path / "blobs").tmp)
        shutil.rmtree(staging)
        req = mpb.ReadBlobRequest(entity=ENTITY, digest=mpb.BlobDigest(algorithm="xxh3_128", digest=b64_xxh(data)))
        assert b"".join(c.data for c in s.man.ReadBlob(req, metadata=s.md)) == data
