"""Wires the manifest service's parts onto a grpc.aio server."""

from __future__ import annotations

import asyncio

import grpc

from depot.manifest.v1 import manifest_pb2
from depot.services.common.interceptor import Gate, HandlerAuthenticates

from .access import MetadataAccess
from .blobs import DEFAULT_GC_GRACE_S, Blobs
from .manifests import Manifests
from .operations import Operations
from .reading import ManifestReading
from .references import ReferencePolicy
from .servicer import DEFAULT_IDLE_TIMEOUT_S, ManifestServicer, add_to_server
from .store import BlobStore

SERVICE_NAME = manifest_pb2.DESCRIPTOR.services_by_name["ManifestService"].full_name
# For serving.new_server: the handlers ask metadata (CheckAccess) about the
# key and the request's entity together; the edge refuses calls without a key.
GATES: dict[str, Gate] = {SERVICE_NAME: HandlerAuthenticates()}


def add_manifest(
    server: grpc.aio.Server,
    store: BlobStore,
    metadata_channel: grpc.aio.Channel,
    internal_secret: bytes,
    references: ReferencePolicy | None = None,
    *,
    idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S,
    operations: Operations | None = None,
    gc_grace_s: float = DEFAULT_GC_GRACE_S,
) -> str:
    """Adds the manifest service; ``operations`` holds its reference listings
    (the caller closes it at shutdown, which cancels those still running);
    ``gc_grace_s`` is the GC's grace period (DEPOT_GRACE_PERIOD_S), which the
    dedup age rule depends on."""
    blobs = Blobs(store, gc_grace_s)
    manifests = Manifests(store, blobs, internal_secret, references, reading=ManifestReading(store))
    servicer = ManifestServicer(MetadataAccess(metadata_channel), blobs, manifests, idle_timeout_s, operations)
    add_to_server(servicer, server)
    return SERVICE_NAME


async def sweep_staging(store: BlobStore) -> asyncio.Task[None]:
    """Sweeps what a crash left in the store's staging dir, now and then
    periodically (the task runs until cancelled)."""
    await asyncio.to_thread(store.staging.sweep)
    return asyncio.create_task(store.staging.sweep_periodically(), name="depot-staging-sweep")
