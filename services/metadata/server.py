"""Wires the metadata service's parts onto a grpc.aio server."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

import asyncpg
import grpc

from depot.metadata.v1 import metadata_pb2, metadata_pb2_grpc
from depot.services.common.interceptor import Callers

from .access import Access, Principal
from .accounts import Accounts
from .aliases import Aliases
from .bulk_delete import BulkDeletes
from .db import Database
from .deletion import Deletion
from .housekeeping import DEFAULT_GRACE
from .idempotency import Idempotency
from .lineage import Lineage
from .listings import Listings
from .pages import PageTokens
from .projects import Projects
from .registries import Registries
from .registry_access import RegistryAccess
from .resolver import Resolver
from .runs import Runs
from .servicer import AccessServicer, ArtifactServicer, LineageServicer, RegistryServicer
from .versions import Versions

# The resource families the metadata service serves, each its own gRPC
# service (and health name) on the one port.
SERVICE_NAMES = [
    metadata_pb2.DESCRIPTOR.services_by_name[name].full_name
    for name in ("ArtifactService", "RegistryService", "AccessService", "LineageService")
]

# Bulk deletes one server works on at once: a user's 5-million-version delete
# (about 20 minutes) does not hold up another team's; each runner has one
# batch (one pooled connection) in flight.
BULK_DELETE_RUNNERS = 3


class Metadata:
    """The metadata service's parts on one database pool.

    Two steps, because a grpc.aio server takes its interceptors when it is
    built: ``callers()`` goes to ``serving.new_server`` (the edge
    authenticates every call of the four services with this Access, whose
    caches the domain shares), then ``add_to`` registers the servicers.
    ``start`` runs the background work (the bulk deletes' runner) until
    ``aclose``.
    """

    def __init__(self, pool: asyncpg.Pool, internal_secret: bytes, *, grace: timedelta = DEFAULT_GRACE):
        db = Database(pool)
        access = Access(db)
        pages = PageTokens(internal_secret)
        projects = Projects(db)
        registry_access = RegistryAccess(db, access)
        resolver = Resolver(db, access, registry_access)
        runs = Runs(db, access, projects)
        lineage = Lineage(db, access, pages, runs, resolver)
        self._callers: Callers[Principal] = Callers(access.authenticate)
        shared = (self._callers, access, Idempotency(db), registry_access)
        self._bulk_deletes = BulkDeletes(db, access, projects, grace=grace)
        self._runners: list[asyncio.Task[None]] = []
        self._artifacts = ArtifactServicer(
            *shared,
            runs=runs,
            versions=Versions(db, access, projects, runs, resolver),
            aliases=Aliases(db, access, pages, projects, registry_access, resolver),
            listings=Listings(db, access, pages, projects),
            lineage=lineage,
            bulk_deletes=self._bulk_deletes,
            deletion=Deletion(db, access, resolver, grace),
            manifest_secret=internal_secret,
            grace=grace,
        )
        self._registries = RegistryServicer(*shared, Registries(db, access, pages, registry_access, resolver))
        self._access = AccessServicer(*shared, Accounts(db, access, pages))
        self._lineage = LineageServicer(*shared, lineage)

    def callers(self) -> dict[str, Callers[Principal]]:
        return dict.fromkeys(SERVICE_NAMES, self._callers)

    def add_to(self, server: grpc.aio.Server) -> list[str]:
        """Adds the four metadata services to ``server``; returns their names for health."""
        metadata_pb2_grpc.add_ArtifactServiceServicer_to_server(self._artifacts, server)
        metadata_pb2_grpc.add_RegistryServiceServicer_to_server(self._registries, server)
        metadata_pb2_grpc.add_AccessServiceServicer_to_server(self._access, server)
        metadata_pb2_grpc.add_LineageServiceServicer_to_server(self._lineage, server)
        return SERVICE_NAMES

    def start(self) -> None:
        """Starts the runners of bulk deletes (every replica runs them; leases
        keep each operation to one runner at a time)."""
        loop = asyncio.get_running_loop()
        self._runners = [
            loop.create_task(self._bulk_deletes.run(), name=f"bulk-deletes-{i}") for i in range(BULK_DELETE_RUNNERS)
        ]

    async def aclose(self) -> None:
        """Stops the runners; the operations they held are released for the next ones."""
        for task in self._runners:
            task.cancel()
        for task in self._runners:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._runners = []
