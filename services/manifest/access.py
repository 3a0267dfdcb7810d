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
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2

from depot.metadata.v1 import metadata_pb2 as mpb
from depot.metadata.v1 import metadata_pb2_grpc
from depot.services.common.caching import ExpiringCache
from depot.services.common.credentials import REVOKE_WITHIN_S
from depot.services.common.errors import (
    DepotError,
    ErrorReason,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Reason,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)

READ = mpb.PERMISSION_READ
WRITE = mpb.PERMISSION_WRITE
# Half the bound: metadata's auth cache (services/metadata/access.py
# AUTH_CACHE_S) may hold the key for the other half.
CACHE_TTL_S = REVOKE_WITHIN_S / 2
# Answers kept; when full, the least recently used makes room (caching.py).
CACHE_MAX = 10_000


# Metadata's answer is the caller's answer, with its message: these codes
# say something about the request or the caller, and a client must see them
# as such (retrying a PERMISSION_DENIED, or a bug hidden as an outage, helps
# nobody).
_PASSED_ON: dict[grpc.StatusCode, tuple[type[DepotError], str]] = {
    grpc.StatusCode.INVALID_ARGUMENT: (InvalidArgument, "invalid entity"),
    grpc.StatusCode.NOT_FOUND: (NotFound, "no such entity"),
    grpc.StatusCode.PERMISSION_DENIED: (PermissionDenied, "permission denied"),
    grpc.StatusCode.UNAUTHENTICATED: (Unauthenticated, "invalid API key"),
    grpc.StatusCode.FAILED_PRECONDITION: (FailedPrecondition, "failed precondition"),
    grpc.StatusCode.RESOURCE_EXHAUSTED: (ResourceExhausted, "resource exhausted"),
}
# Only a failure to get an answer is retryable.
_TRANSPORT = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


def _caller_error(e: grpc.aio.AioRpcError) -> DepotError:
    """The error the manifest service answers for metadata's CheckAccess failure ``e``."""
    code = e.code()
    passed = _PASSED_ON.get(code)
    if passed is not None:
        cls, default = passed
        reason, field = _error_info(e)
        if field is None and code != grpc.StatusCode.UNAUTHENTICATED:
            field = "entity"
        return cls(e.details() or default, field=field, reason=reason)
    if code in _TRANSPORT:
        return Unavailable(f"metadata service: {e.details()}")
    # INTERNAL, UNKNOWN, anything unexpected: a bug behind the answer, not an
    # outage. A plain DepotError is INTERNAL at the edge (status.py), logged
    # there, and not retried by clients.
    return DepotError(f"metadata service failed ({code.name}): {e.details()}", reason=ErrorReason.METADATA_FAILED)


def _error_info(e: grpc.aio.AioRpcError) -> tuple[Reason | None, str | None]:
    """The reason and field metadata put in its ErrorInfo (status.py), so they reach the caller too."""
    for key, value in e.trailing_metadata() or ():
        if key != "grpc-status-details-bin" or not isinstance(value, bytes):
            continue
        try:
            status = status_pb2.Status.FromString(value)
        except DecodeError:
            return None, None
        for detail in status.details:
            info = error_details_pb2.ErrorInfo()
            if detail.Unpack(info):
                # Metadata sends ErrorReason names; one this build does not know stays unset.
                known = info.reason in ErrorReason.keys()
                return ErrorReason.Value(info.reason) if known else None, info.metadata.get("field") or None
    return None, None


class MetadataAccess:
    def __init__(self, channel: grpc.aio.Channel):
        self._stub = metadata_pb2_grpc.AccessServiceStub(channel)
        self._cache: ExpiringCache[tuple[bytes, str, int, str], bool] = ExpiringCache("manifest.access", CACHE_MAX)

    async def check(self, api_key: str, entity: str, permission: int, manifest_id: str = "") -> bool:
        """Raises unless allowed; True when allowed only through a registry link to ``manifest_id``."""
        ck = (hashlib.sha256(api_key.encode()).digest(), entity, permission, manifest_id)
        now = time.monotonic()
        hit = self._cache.get(ck)
        if hit is not None:
            return hit
        try:
            request = mpb.CheckAccessRequest(
                api_key=api_key,
                entity=entity,
                permission=mpb.Permission.ValueType(permission),
                manifest_id=manifest_id,
            )
            resp = await self._stub.CheckAccess(
                request,
                metadata=(("authorization", f"Bearer {api_key}"),),
                timeout=10,
            )
        except grpc.aio.AioRpcError as e:
            raise _caller_error(e) from None
        self._cache.put(ck, bool(resp.via_registry), now + CACHE_TTL_S)
        return bool(resp.via_registry)
