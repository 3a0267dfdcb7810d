"""Wires the GC service's parts onto a grpc.aio server."""

from __future__ import annotations

import asyncpg
import grpc

from depot.gc.v1 import gc_pb2, gc_pb2_grpc
from depot.services.common.interceptor import Callers
from depot.services.metadata.public import Principal, access_on

from .collector import Collector
from .servicer import GcServicer

SERVICE_NAME = gc_pb2.DESCRIPTOR.services_by_name["GcService"].full_name


class Gc:
    """The GC service's parts on metadata's database pool.

    Two steps, as for metadata's ``Metadata``: ``callers()`` goes to
    ``serving.new_server`` (the edge authenticates every call), then
    ``add_to`` registers the servicer.
    """

    def __init__(self, pool: asyncpg.Pool):
        access = access_on(pool)
        self._callers: Callers[Principal] = Callers(access.authenticate)
        self._servicer = GcServicer(self._callers, access, Collector(pool))

    def callers(self) -> dict[str, Callers[Principal]]:
        return {SERVICE_NAME: self._callers}

    def add_to(self, server: grpc.aio.Server) -> str:
        """Adds the GC service to ``server``; returns its name for health."""
        gc_pb2_grpc.add_GcServiceServicer_to_server(self._servicer, server)
        return SERVICE_NAME
