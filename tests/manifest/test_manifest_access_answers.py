"""The manifest service passes metadata's access answer on as the caller's answer.

It used to turn every answer but UNAUTHENTICATED and PERMISSION_DENIED into
UNAVAILABLE, so a superuser's typo in an entity name (NOT_FOUND, now that
entities are no longer created on first use) looked like an outage and was
retried by clients.
"""

from __future__ import annotations

import grpc
import pytest

from depot.manifest.v1 import manifest_pb2 as mpb
from depot.manifest.v1 import manifest_pb2_grpc
from depot.metadata.v1 import metadata_pb2 as pb
from depot.metadata.v1 import metadata_pb2_grpc


def _code(call) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value.code()


def test_missing_entity_is_not_found_and_others_entity_is_denied(channel, auth) -> None:
    man = manifest_pb2_grpc.ManifestServiceStub(channel)
    meta = metadata_pb2_grpc.AccessServiceStub(channel)
    missing = mpb.FindMissingBlobsRequest(entity="nosuchteam", blobs=[])
    assert _code(lambda: man.FindMissingBlobs(missing, metadata=auth)) == grpc.StatusCode.NOT_FOUND

    meta.CreateEntity(pb.CreateEntityRequest(entity_id="carol", entity=pb.Entity(kind="user")), metadata=auth)
    key = meta.CreateApiKey(pb.CreateApiKeyRequest(user="entities/carol"), metadata=auth).key
    carol = (("authorization", f"Bearer {key}"),)
    others = mpb.FindMissingBlobsRequest(entity="admin", blobs=[])
    assert _code(lambda: man.FindMissingBlobs(others, metadata=carol)) == grpc.StatusCode.PERMISSION_DENIED
    assert man.FindMissingBlobs(mpb.FindMissingBlobsRequest(entity="carol"), metadata=carol) is not None
