"""What the manifest service answers when metadata's CheckAccess fails (issue 8, round 2).

Every status but INVALID_ARGUMENT/NOT_FOUND/PERMISSION_DENIED/UNAUTHENTICATED
used to become UNAVAILABLE: clients retried a bug forever and the bug hid as
an outage. Now the statuses a client should see pass through, only transport
failures are UNAVAILABLE, and metadata's INTERNAL is the caller's INTERNAL.
"""

from __future__ import annotations

import asyncio

import asyncpg
import grpc
import pytest

from depot.manifest.v1 import manifest_pb2 as mpb
from depot.manifest.v1 import manifest_pb2_grpc

C = grpc.StatusCode


def _code(call) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value.code()


def test_metadata_internal_is_internal_not_unavailable(channel, auth, database_url: str) -> None:
    man = manifest_pb2_grpc.ManifestServiceStub(channel)
    req = mpb.FindMissingBlobsRequest(entity="team", blobs=[])
    assert man.FindMissingBlobs(req, metadata=auth) is not None

    async def sql(statement: str) -> None:
        conn = await asyncpg.connect(database_url)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    # A real fault inside the real metadata service: the table it reads is gone.
    asyncio.run(sql("ALTER TABLE entities RENAME TO entities_gone"))
    try:
        fresh = mpb.FindMissingBlobsRequest(entity="team2", blobs=[])  # not in the access cache
        assert _code(lambda: man.FindMissingBlobs(fresh, metadata=auth)) == C.INTERNAL
    finally:
        asyncio.run(sql("ALTER TABLE entities_gone RENAME TO entities"))
    assert man.FindMissingBlobs(req, metadata=auth) is not None
