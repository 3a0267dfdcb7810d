"""Asks the metadata service whether a caller may touch an entity.

The manifest service has no database; it forwards the caller's API key to
metadata's CheckAccess and caches positive answers for CACHE_TTL_S, so a
burst of uploads costs one round trip per half second.

Revocation bound: an answer here is at most CACHE_TTL_S old, and metadata
gave it from a key it had checked at most its AUTH_CACHE_S before, so a
revoked key (or a removed role) is refused here, writes included, within
``REVOKE_WITHIN_S`` (1 s) of the revocation's commit. Calls already past
the check (an upload in progress) finish.
"""

from __future__ import annotations

import hashlib
import time

import grpc

from depot.metadata.v1 import metadata_pb2 as mpb
from depot.metadata.v1 import metadata_pb2_grpc
from depot.services.common.credentials import REVOKE_WITHIN_S
from depot.services.common.errors import InvalidArgument, NotFound, PermissionDenied, Unauthenticated, Unavailable

READ = mpb.PERMISSION_READ
WRITE = mpb.PERMISSION_WRITE
# Half the bound: metadata's auth cache (services/metadata/access.py
# AUTH_CACHE_S) may hold the key for the other half.
CACHE_TTL_S = REVOKE_WITHIN_S / 2


class MetadataAccess:
    def __init__(self, channel: grpc.aio.Channel):
        self._stub = metadata_pb2_grpc.MetadataServiceStub(channel)
        self._cache: dict[tuple[bytes, str, int, str], tuple[float, bool]] = {}

    async def check(self, api_key: str, entity: str, permission: int, manifest_id: str = "") -> bool:
        """Raises unless allowed; True when allowed only through a registry link to ``manifest_id``."""
        ck = (hashlib.sha256(api_key.encode()).digest(), entity, permission, manifest_id)
        now = time.monotonic()
        hit = self._cache.get(ck)
        if hit is not None and hit[0] > now:
            return hit[1]
        try:
            resp = await self._stub.CheckAccess(
                mpb.CheckAccessRequest(api_key=api_key, entity=entity, permission=permission, manifest_id=manifest_id),
                metadata=(("authorization", f"Bearer {api_key}"),),
                timeout=10,
            )
        except grpc.aio.AioRpcError as e:
            # Metadata's answer is the caller's answer; only a failure to get
            # one is UNAVAILABLE (retryable).
            if e.code() == grpc.StatusCode.UNAUTHENTICATED:
                raise Unauthenticated(e.details() or "invalid API key") from None
            if e.code() == grpc.StatusCode.PERMISSION_DENIED:
                raise PermissionDenied(e.details() or "permission denied", field="entity") from None
            if e.code() == grpc.StatusCode.NOT_FOUND:
                raise NotFound(e.details() or "no such entity", field="entity") from None
            if e.code() == grpc.StatusCode.INVALID_ARGUMENT:
                raise InvalidArgument(e.details() or "invalid entity", field="entity") from None
            raise Unavailable(f"metadata service: {e.details()}") from None
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[ck] = (now + CACHE_TTL_S, resp.via_registry)
        return bool(resp.via_registry)
