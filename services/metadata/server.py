"""Wires the metadata service's parts onto a grpc.aio server."""

from __future__ import annotations

import asyncpg
import grpc

from depot.metadata.v1 import metadata_pb2, metadata_pb2_grpc

from .access import Access
from .accounts import Accounts
from .aliases import Aliases
from .db import Database
from .idempotency import Idempotency
from .lineage import Lineage
from .listings import Listings
from .pages import PageTokens
from .projects import Projects
from .registries import Registries
from .registry_access import RegistryAccess
from .resolver import Resolver
from .runs import Runs
from .servicer import MetadataServicer
from .versions import Versions

SERVICE_NAME = metadata_pb2.DESCRIPTOR.services_by_name["MetadataService"].full_name


def add_metadata(server: grpc.aio.Server, pool: asyncpg.Pool, internal_secret: bytes) -> str:
    db = Database(pool)
    access = Access(db)
    pages = PageTokens(internal_secret)
    projects = Projects(db)
    registry_access = RegistryAccess(db, access)
    resolver = Resolver(db, access, registry_access)
    runs = Runs(db, access, projects)
    servicer = MetadataServicer(
        access,
        runs,
        Versions(db, access, projects, runs, resolver),
        Aliases(db, access, pages, projects, registry_access, resolver),
        Listings(db, access, pages, projects),
        Idempotency(db),
        internal_secret,
        accounts=Accounts(db, access, pages),
        pages=pages,
        registries=Registries(db, access, pages, registry_access, resolver),
        registry_access=registry_access,
        lineage=Lineage(db, access, pages, runs, resolver),
    )
    metadata_pb2_grpc.add_MetadataServiceServicer_to_server(servicer, server)
    return SERVICE_NAME
