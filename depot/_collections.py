"""Collections and artifact types as W&B's public API shows them (``artifact_collection(s)``, ``artifact_type(s)``).

Depot keeps no separate type objects: a project's types are the types of its
collections, read from the collection listing (filtered by type on the
server).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from depot.metadata.v1 import metadata_pb2 as pb

from ._artifact import Artifact, artifact_from_version
from ._client import Client
from ._paging import all_items


def list_collections(client: Client, entity: str, project: str, type_name: str = "") -> list[pb.Collection]:
    """Every collection of a project (of one type when ``type_name`` is given)."""
    parent = f"entities/{entity}/projects/{project}"
    return all_items(
        lambda t: client.call(
            client.artifacts.ListCollections,
            pb.ListCollectionsRequest(parent=parent, page_size=100, page_token=t, type=type_name),
        ),
        lambda page: page.collections,
    )


def list_versions(client: Client, collection: str, tag: str = "") -> list[Artifact]:
    """Every live version of a collection (resource name), newest first."""
    versions = all_items(
        lambda t: client.call(
            client.artifacts.ListArtifactVersions,
            pb.ListArtifactVersionsRequest(parent=collection, page_size=100, page_token=t, tag=tag),
        ),
        lambda page: page.versions,
    )
    return [artifact_from_version(client, v) for v in versions]


@dataclass(frozen=True)
class ArtifactCollection:
    """A collection (W&B's artifact "sequence"): the versions of one name.

    Read-only in Depot: a collection cannot be renamed, retyped or given a
    description (W&B's ``save``); its versions can.
    """

    name: str
    type: str
    entity: str
    project: str
    created_at: datetime
    version_count: int
    _client: Client

    @classmethod
    def _from_pb(cls, client: Client, c: pb.Collection) -> ArtifactCollection:
        parts = c.name.split("/")
        return cls(parts[5], c.type, parts[1], parts[3], c.create_time.ToDatetime(), c.version_count, client)

    @property
    def _resource(self) -> str:
        return f"entities/{self.entity}/projects/{self.project}/artifacts/{self.name}"

    def is_sequence(self) -> bool:
        """True: every Depot collection is a project sequence (registry collections are reached as links)."""
        return True

    def artifacts(self) -> list[Artifact]:
        """The live versions, newest first (W&B's ``versions()`` too)."""
        return list_versions(self._client, self._resource)

    versions = artifacts

    @property
    def aliases(self) -> list[str]:
        """The aliases held by the collection's versions."""
        c = self._client
        aliases = all_items(
            lambda t: c.call(
                c.artifacts.ListAliases, pb.ListAliasesRequest(parent=self._resource, page_size=100, page_token=t)
            ),
            lambda page: page.aliases,
        )
        return sorted({a.alias for a in aliases})


@dataclass(frozen=True)
class ArtifactType:
    """An artifact type of a project, W&B's ``ArtifactType``."""

    name: str
    entity: str
    project: str
    _client: Client

    @property
    def type(self) -> str:
        return self.name

    def collections(self) -> list[ArtifactCollection]:
        """The project's collections of this type."""
        found = list_collections(self._client, self.entity, self.project, self.name)
        return [ArtifactCollection._from_pb(self._client, c) for c in found]

    def collection(self, name: str) -> ArtifactCollection | None:
        """The collection ``name`` of this type, or None."""
        return next((c for c in self.collections() if c.name == name), None)
