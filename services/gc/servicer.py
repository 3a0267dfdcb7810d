"""gRPC handlers of the GC service (superusers, or admins of the entity).

Callers are authenticated against the database by metadata's ``Access``,
with its per-process cache: a revoked key is refused here within
``AUTH_CACHE_S`` (0.5 s), inside the documented ``REVOKE_WITHIN_S``.
"""

from __future__ import annotations

from depot.gc.v1 import gc_pb2 as pb
from depot.gc.v1 import gc_pb2_grpc
from depot.services.common.credentials import bearer_from_metadata
from depot.services.common.errors import PermissionDenied
from depot.services.common.interceptor import Context
from depot.services.metadata.access import ADMIN, Access

from .collector import Collector


class GcServicer(gc_pb2_grpc.GcServiceServicer):
    def __init__(self, access: Access, collector: Collector):
        self._access = access
        self._collector = collector

    async def RunCollection(self, request: pb.RunCollectionRequest, context: Context) -> pb.CollectionReport:
        who = await self._access.authenticate(bearer_from_metadata(context.invocation_metadata()))
        if request.entity:
            await self._access.require(who, request.entity, ADMIN)
        elif not who.superuser:
            raise PermissionDenied("collecting every entity needs a superuser", field="entity")
        r = await self._collector.run(request.entity, force=request.force)
        return pb.CollectionReport(versions_expired=r.versions_expired, sample=r.sample, dry_run=r.dry_run, ran=r.ran)
