"""Registries over the wire: link a logged version into an org's curated collection, or unlink it.

The typed views are on the model (``depot._artifact``)::

    art.link("acme/wandb-registry-model/churn", aliases=["staging"])   # a LinkedArtifact
    depot.Api().artifact("acme/wandb-registry-model/churn:staging")

This module sends the calls and returns their messages.
"""

from __future__ import annotations

from depot.metadata.v1 import metadata_pb2 as pb

from ._client import Client, request_id
from ._exceptions import InvalidArgumentError
from ._paths import parse_registry_target
from ._rules import check_name


def link_version(
    client: Client, version: pb.ArtifactVersion, target_path: str, aliases: list[str] | None
) -> pb.ArtifactVersion:
    """Links a committed version into ``target_path`` (idempotent); the version as seen through the link."""
    target = parse_registry_target(target_path)
    if isinstance(aliases, str):
        raise InvalidArgumentError("aliases is a list of strings, not one string", field="aliases")
    for a in aliases or []:
        check_name(a, "aliases", "alias")
    link = client.call(
        client.metadata.LinkArtifactVersion,
        pb.LinkArtifactVersionRequest(
            version=version.name,
            target=target.collection_resource,
            aliases=list(aliases or []),
            request_id=request_id(),
        ),
    )
    v = pb.ArtifactVersion()
    v.CopyFrom(link.version)
    v.link.CopyFrom(
        pb.LinkInfo(
            name=link.name,
            collection=link.collection,
            index=link.index,
            aliases=link.aliases,
            create_time=link.create_time,
        )
    )
    return v


def unlink(client: Client, link_name: str) -> None:
    """Removes a link from its registry collection (the version stays)."""
    client.call(
        client.metadata.UnlinkArtifactVersion,
        pb.UnlinkArtifactVersionRequest(name=link_name, request_id=request_id()),
    )
