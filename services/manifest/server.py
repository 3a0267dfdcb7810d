"""Wires the manifest service's parts onto a grpc.aio server."""

from __future__ import annotations

import grpc

from depot.manifest.v1 import manifest_pb2, manifest_pb2_grpc

from .access import MetadataAccess
from .blobs import Blobs
from .manifests import Manifests
from .references import ReferencePolicy
from .servicer import ManifestServicer
from .store import BlobStore

SERVICE_NAME = manifest_pb2.DESCRIPTOR.services_by_name["ManifestService"].full_name


def add_manifest(
    server: grpc.aio.Server,
    store: BlobStore,
    metadata_channel: grpc.aio.Channel,
    internal_secret: bytes,
    references: ReferencePolicy | None = None,
) -> str:
    blobs = Blobs(store)
    manifests = Manifests(store, blobs, internal_secret, references)
    servicer = ManifestServicer(MetadataAccess(metadata_channel), blobs, manifests)
    manifest_pb2_grpc.add_ManifestServiceServicer_to_server(servicer, server)
    return SERVICE_NAME
