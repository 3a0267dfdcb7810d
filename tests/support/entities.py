"""Explicit entity creation for tests: reads and logging never create entities.

A superuser once created a missing entity on first use; tests that log into
a fresh team now say so first.
"""

from __future__ import annotations

import grpc

from depot.metadata.v1 import metadata_pb2 as pb
from depot.metadata.v1 import metadata_pb2_grpc


def create_team(address: str, admin_key: str, name: str, *, kind: str = "team") -> None:
    """Creates the entity ``name`` (a team by default) unless it exists."""
    with grpc.insecure_channel(address) as ch:
        stub = metadata_pb2_grpc.AccessServiceStub(ch)
        try:
            stub.CreateEntity(
                pb.CreateEntityRequest(entity_id=name, entity=pb.Entity(kind=kind)),
                metadata=(("authorization", f"Bearer {admin_key}"),),
            )
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.ALREADY_EXISTS:  # type: ignore[attr-defined]
                raise
