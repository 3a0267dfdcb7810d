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
from .servicer import MetadataServicer

SERVICE_NAME = metadata_pb2.DESCRIPTOR.services_by_name["MetadataService"].full_name


def add_metadata(server: grpc.aio.Server, pool: asyncpg.Pool, internal_secret: bytes) -> str:
    db = Database(pool)
    access = Access(db)
    pages = PageTokens(internal_secret)
    artifacts = Artifacts(db, access, pages)
    servicer = MetadataServicer(
        access,
        artifacts,
        Idempotency(db),
        internal_secret,
        accounts=Accounts(db, access, pages),
        pages=pages,
        registries=Registries(db, access, pages, artifacts),
        lineage=Lineage(db, access, pages, artifacts),
    )
    metadata_pb2_grpc.add_MetadataServiceServicer_to_server(servicer, server)
    return SERVICE_NAME
