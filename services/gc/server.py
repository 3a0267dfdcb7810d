"""Wires the GC service's parts onto a grpc.aio server."""

from __future__ import annotations

import asyncpg
import grpc

from depot.gc.v1 import gc_pb2, gc_pb2_grpc
from depot.services.metadata.access import Access
from depot.services.metadata.db import Database

from .collector import Collector
from .servicer import GcServicer

SERVICE_NAME = gc_pb2.DESCRIPTOR.services_by_name["GcService"].full_name


def add_gc(server: grpc.aio.Server, pool: asyncpg.Pool) -> str:
    gc_pb2_grpc.add_GcServiceServicer_to_server(GcServicer(Access(Database(pool)), Collector(pool)), server)
    return SERVICE_NAME
