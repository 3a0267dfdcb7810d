"""Deleting and undeleting versions over the wire.

The typed views are on the model::

    art.delete(delete_aliases=True)                       # depot._artifact
    depot.Api().artifact("team/proj/data:v3").delete()
    depot.Api().undelete_artifact("team/proj/data:v3")    # within the grace period

This module sends the calls and returns their messages. A refused delete
(the version holds custom aliases, or is linked into a registry) raises
:class:`depot.FailedPreconditionError` naming them; an unknown or purged
version :class:`depot.NotFoundError`.
"""

from __future__ import annotations

from depot.metadata.v1 import metadata_pb2 as pb

from ._client import Client, request_id


def delete_version(client: Client, name: str, delete_aliases: bool) -> pb.ArtifactVersion:
    """Deletes the version ``name`` (a resource name); the version as deleted."""
    return client.call(
        client.artifacts.DeleteArtifactVersion,
        pb.DeleteArtifactVersionRequest(name=name, delete_aliases=delete_aliases, request_id=request_id()),
    )


def undelete_version(client: Client, name: str) -> pb.UndeleteArtifactVersionResponse:
    """Restores the deleted version ``name`` (``.../versions/vN``)."""
    return client.call(
        client.artifacts.UndeleteArtifactVersion,
        pb.UndeleteArtifactVersionRequest(name=name, request_id=request_id()),
    )
