"""Wires the metadata service's parts onto a grpc.aio server."""

from __future__ import annotations

import asyncpg
import grpc

from depot.metadata.v1 import metadata_pb2, metadata_pb2_grpc

from .access import Access
from .accounts import Accounts
from .artifacts import Artifacts
from .db import Database
from .idempotency import Idempotency
from .lineage import Lineage
from .pages import PageTokens
from .registries import Registries
from .servicer import AccessServicer, ArtifactServicer, LineageServicer, RegistryServicer

# The resource families the metadata service serves, each its own gRPC
# service (and health name) on the one port.
SERVICE_NAMES = [
    metadata_pb2.DESCRIPTOR.services_by_name[name].full_name
    for name in ("ArtifactService", "RegistryService", "AccessService", "LineageService")
]


def add_metadata(server: grpc.aio.Server, pool: asyncpg.Pool, internal_secret: bytes) -> list[str]:
    """Adds the four metadata services to ``server``; returns their names for health."""
    db = Database(pool)
    access = Access(db)
    pages = PageTokens(internal_secret)
    idempotency = Idempotency(db)
    artifacts = Artifacts(db, access, pages)
    registries = Registries(db, access, pages, artifacts)
    shared = (access, idempotency, registries)
    metadata_pb2_grpc.add_ArtifactServiceServicer_to_server(
        ArtifactServicer(*shared, artifacts, internal_secret), server
    )
    metadata_pb2_grpc.add_RegistryServiceServicer_to_server(RegistryServicer(*shared), server)
    metadata_pb2_grpc.add_AccessServiceServicer_to_server(AccessServicer(*shared, Accounts(db, access, pages)), server)
    metadata_pb2_grpc.add_LineageServiceServicer_to_server(
        LineageServicer(*shared, Lineage(db, access, pages, artifacts)), server
    )
    return SERVICE_NAMES
