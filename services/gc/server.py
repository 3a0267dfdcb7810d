"""Wires the GC service's parts onto a grpc.aio server."""

from __future__ import annotations

import asyncio

import asyncpg
import grpc

from depot.gc.v1 import gc_pb2, gc_pb2_grpc
from depot.services.common.interceptor import Callers
from depot.services.manifest.public import BlobStore
from depot.services.metadata.public import Principal, access_on

from .collector import Collector
from .config import GcSettings
from .schedule import Schedule
from .servicer import GcServicer
from .sweep import BlobCollector

SERVICE_NAME = gc_pb2.DESCRIPTOR.services_by_name["GcService"].full_name


class Gc:
    """The GC service's parts on metadata's database pool.

    Two steps, as for metadata's ``Metadata``: ``callers()`` goes to
    ``serving.new_server`` (the edge authenticates every call), then
    ``add_to`` registers the servicer. ``start_schedule`` runs the scheduled
    passes (one process per deployment, or per replica: the collector lock
    keeps them to one at a time).

    Args:
        pool: metadata's database.
        settings: the grace period, the schedule and the mark phase's work dir.
        store: the manifest service's blob store, which the pass's mark and
            sweep collect; None collects metadata only (expire and purge).
    """

    def __init__(self, pool: asyncpg.Pool, settings: GcSettings | None = None, store: BlobStore | None = None):
        settings = settings or GcSettings()
        access = access_on(pool)
        self._callers: Callers[Principal] = Callers(access.authenticate)
        sweeper = None if store is None else BlobCollector(pool, store, settings.grace, settings.work_dir)
        self.collector = Collector(pool, grace=settings.grace, sweeper=sweeper, manifest_grace=settings.manifest_grace)
        self.schedule = Schedule(settings.interval_s)
        self._servicer = GcServicer(self._callers, access, self.collector, self.schedule)

    def callers(self) -> dict[str, Callers[Principal]]:
        return {SERVICE_NAME: self._callers}

    def add_to(self, server: grpc.aio.Server) -> str:
        """Adds the GC service to ``server``; returns its name for health."""
        gc_pb2_grpc.add_GcServiceServicer_to_server(self._servicer, server)
        return SERVICE_NAME

    def start_schedule(self) -> asyncio.Task[None]:
        """Runs the scheduled passes until the task is cancelled."""
        return asyncio.create_task(self.schedule.run(self.collector))
