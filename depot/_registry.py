"""Registries: link logged versions into an org's curated collections.

art.link("acme/wandb-registry-model/churn", aliases=["staging"])
depot.Api().artifact("acme/wandb-registry-model/churn:staging")
"""

from __future__ import annotations

from depot.metadata.v1 import metadata_pb2 as pb

from ._artifact import Artifact
from ._client import Client, request_id
from ._exceptions import InvalidArgumentError
from ._paths import check_name, parse_registry_target


class LinkedArtifact(Artifact):
    """A version reached through a registry link.

    ``version`` and ``aliases`` are the link's own (its index and aliases in the
    registry collection); ``source_version`` names the version that was linked.
    """

    @property
    def _link(self) -> pb.LinkInfo:
        return self._logged().link

    @property
    def version(self) -> str:
        """``vN`` of the link in its registry collection."""
        return f"v{self._link.index}"

    @property
    def aliases(self) -> list[str]:
        """The link's aliases in the registry collection."""
        return list(self._link.aliases)

    @property
    def registry_path(self) -> str:
        """``{org}/wandb-registry-{registry}/{collection}``."""
        parts = self._link.collection.split("/")
        return f"{parts[1]}/wandb-registry-{parts[3]}/{parts[5]}"

    @property
    def qualified_name(self) -> str:
        return f"{self.registry_path}:{self.version}"

    @property
    def source_version(self) -> str:
        """``entity/project/name:vN`` of the linked version."""
        v = self._logged()
        parts = v.collection.split("/")
        return f"{parts[1]}/{parts[3]}/{parts[5]}:v{v.index}"

    @property
    def source_aliases(self) -> list[str]:
        return list(self._logged().aliases)

    def unlink(self) -> None:
        """Removes this link from its registry collection (the version stays)."""
        assert self._client is not None
        self._client.call(
            self._client.registries.UnlinkArtifactVersion,
            pb.UnlinkArtifactVersionRequest(name=self._link.name, request_id=request_id()),
        )


def artifact_from_version(client: Client, v: pb.ArtifactVersion) -> Artifact:
    """An Artifact for a version message; a LinkedArtifact when named through a link."""
    if v.HasField("link"):
        art = LinkedArtifact._from_version(client, v)
        art.name = v.link.collection.rsplit("/", 1)[-1]
        return art
    return Artifact._from_version(client, v)


def link_version(
    client: Client, version: pb.ArtifactVersion, target_path: str, aliases: list[str] | None
) -> LinkedArtifact:
    """Links a committed version into ``target_path``; idempotent."""
    target = parse_registry_target(target_path)
    if isinstance(aliases, str):
        raise InvalidArgumentError("aliases is a list of strings, not one string", field="aliases")
    for a in aliases or []:
        check_name(a, "alias", "aliases")
    link = client.call(
        client.registries.LinkArtifactVersion,
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
    art = artifact_from_version(client, v)
    assert isinstance(art, LinkedArtifact)
    return art
