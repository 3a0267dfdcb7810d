"""gRPC handlers of the GC service (superusers, or admins of the entity).

The edge authenticates callers (server.py gives it a ``Callers`` over
metadata's ``Access``, with its per-process cache: a revoked key is refused
here within ``AUTH_CACHE_S`` (0.5 s), inside the documented
``REVOKE_WITHIN_S``); the handler checks the caller's role.

Passes over every entity, and their reports, are a superuser's: a report
names versions of any entity in its sample. An entity's admins run and see
the passes limited to their entity.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from depot.gc.v1 import gc_pb2 as pb
from depot.gc.v1 import gc_pb2_grpc
from depot.services.common.errors import InvalidArgument, PermissionDenied
from depot.services.common.interceptor import Callers, Context
from depot.services.common.validate import check_identifier, check_name, duration_pb
from depot.services.metadata.public import ADMIN, Access, Principal

from .collector import Collector
from .passes import RequestKey
from .report import Report
from .schedule import Schedule

# As metadata's request_id bound (idempotency.MAX_REQUEST_ID).
MAX_REQUEST_ID = 128


class GcServicer(gc_pb2_grpc.GcServiceServicer):
    def __init__(self, callers: Callers[Principal], access: Access, collector: Collector, schedule: Schedule):
        self._callers = callers
        self._access = access
        self._collector = collector
        self._schedule = schedule
        # RunNow passes in flight (a task nobody references may be collected).
        self._passes: set[asyncio.Task[Report]] = set()

    async def _entity(self, entity: str) -> str:
        """The entity a call is limited to ('' for all), once the caller may act on it."""
        who = self._callers.get()
        entity = entity.removeprefix("entities/")
        if entity:
            check_name(entity, "entity", "entity name")
            await self._access.require(who, entity, ADMIN)
        elif not who.superuser:
            raise PermissionDenied("every entity's passes are a superuser's; name your entity", field="entity")
        return entity

    async def RunNow(self, request: pb.RunNowRequest, context: Context) -> pb.CollectionReport:
        entity = await self._entity(request.entity)
        if len(request.request_id) > MAX_REQUEST_ID:
            raise InvalidArgument(f"request_id is longer than {MAX_REQUEST_ID} characters", field="request_id")
        check_identifier(request.request_id, "request_id", "request_id")
        key = RequestKey(self._callers.get().user_id, request.request_id) if request.request_id else None
        # The pass goes on if the caller goes away (deadline, dropped
        # connection): stopped midway it would only leave work for the next
        # one, and a retry under the same request_id gets its report.
        task = asyncio.create_task(self._collector.run(entity, force=not request.dry_run, request=key))
        self._passes.add(task)
        task.add_done_callback(self._passes.discard)
        return report_pb(await asyncio.shield(task))

    async def GetStatus(self, request: pb.GetStatusRequest, context: Context) -> pb.GcStatus:
        entity = await self._entity(request.entity)
        reports, running = await self._collector.status(entity or None)
        status = pb.GcStatus(last_passes=[report_pb(r) for r in reports], running=running)
        status.interval.CopyFrom(duration_pb(timedelta(seconds=self._schedule.interval_s)))
        status.grace_period.CopyFrom(duration_pb(self._collector.grace))
        next_pass = self._schedule.next_pass
        if next_pass is None and self._schedule.interval_s > 0:
            # A process that does not run the schedule itself (an all-in-one
            # worker): the next pass is due an interval after the last one.
            scheduled = [r.start_time for r in reports if r.trigger == "schedule" and r.start_time is not None]
            if scheduled:
                next_pass = scheduled[0] + timedelta(seconds=self._schedule.interval_s)
        if next_pass is not None:
            status.next_pass_time.FromDatetime(next_pass)
        return status


def report_pb(r: Report) -> pb.CollectionReport:
    """A pass's report on the wire (a pass that did not run has no start_time or duration)."""
    out = pb.CollectionReport(
        ran=r.ran,
        dry_run=r.dry_run,
        entity=r.entity,
        trigger=r.trigger,
        sample=r.sample,
        phases=[
            pb.PhaseReport(name=p.name, duration=duration_pb(timedelta(seconds=p.duration_s)), items=p.items)
            for p in r.phases
        ],
        errors=r.errors,
        versions_expired=r.versions_expired,
        versions_purged=r.versions_purged,
        pending_purged=r.pending_purged,
        manifests_deleted=r.manifests_deleted,
        blobs_deleted=r.blobs_deleted,
        bytes_freed=r.bytes_freed,
        blobs_scanned=r.blobs_scanned,
    )
    if r.start_time is not None:
        out.start_time.FromDatetime(r.start_time)
        out.duration.CopyFrom(duration_pb(timedelta(seconds=r.duration_s)))
    return out
