"""gRPC handlers of the GC service (superusers, or admins of the entity).

The edge authenticates callers (server.py gives it a ``Callers`` over
metadata's ``Access``, with its per-process cache: a revoked key is refused
here within ``AUTH_CACHE_S`` (0.5 s), inside the documented
``REVOKE_WITHIN_S``); the handler checks the caller's role.
"""

from __future__ import annotations

from depot.gc.v1 import gc_pb2 as pb
from depot.gc.v1 import gc_pb2_grpc
from depot.services.common.errors import FailedPrecondition, PermissionDenied
from depot.services.common.interceptor import Callers, Context
from depot.services.metadata.public import ADMIN, Access, Principal

from .collector import Collector


class GcServicer(gc_pb2_grpc.GcServiceServicer):
    def __init__(self, callers: Callers[Principal], access: Access, collector: Collector):
        self._callers = callers
        self._access = access
        self._collector = collector

    async def RunNow(self, request: pb.RunNowRequest, context: Context) -> pb.CollectionReport:
        who = self._callers.get()
        if request.entity:
            await self._access.require(who, request.entity, ADMIN)
        elif not who.superuser:
            raise PermissionDenied("collecting every entity needs a superuser", field="entity")
        r = await self._collector.run(request.entity, force=not request.dry_run)
        return pb.CollectionReport(
            versions_expired=r.versions_expired, sample=r.sample, dry_run=r.dry_run, ran=r.ran, entity=request.entity
        )

    # Issue 12 placeholder, replaced by the collector work now in progress.
    async def GetStatus(self, request: pb.GetStatusRequest, context: Context) -> pb.GcStatus:
        raise FailedPrecondition("GC status is not available yet", field="entity")
