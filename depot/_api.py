"""Reading without a run, like ``wandb.Api``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from depot.metadata.v1 import metadata_pb2 as pb

from ._artifact import Artifact, artifact_from_version
from ._bulk_delete import DeleteOperation, delete_operation, delete_versions
from ._client import Client
from ._deletion import undelete_version
from ._exceptions import InvalidArgumentError
from ._lineage import Lineage, around
from ._paging import all_items
from ._paths import parse_artifact_path


@dataclass(frozen=True)
class UndeletedArtifact:
    """What ``Api().undelete_artifact`` restored."""

    artifact: Artifact
    # Aliases the version held when deleted and holds again.
    restored_aliases: list[str]
    # Aliases it held that another version took meanwhile (they stay there).
    lost_aliases: list[str]


class Api:
    """Queries Depot: ``Api().artifact("entity/project/name:alias")``."""

    def __init__(
        self,
        address: str | None = None,
        api_key: str | None = None,
        *,
        tls: bool | None = None,
        tls_ca: str | None = None,
        insecure: bool | None = None,
    ):
        """``address``, ``api_key`` and the TLS settings are those of :class:`depot.Client`."""
        self.client = Client(address, api_key, tls=tls, tls_ca=tls_ca, insecure=insecure)

    def artifact(self, path: str, type: str | None = None) -> Artifact:
        """The version named by a path (``:latest`` when no ref is given).

        Paths: ``entity/project/name:ref``, or a registry link
        ``{org}/wandb-registry-{registry}/{collection}:ref`` (also
        ``{org}/registry/{registry}/{collection}:ref``), which gives a
        :class:`LinkedArtifact`.
        """
        p = parse_artifact_path(path, entity=os.environ.get("DEPOT_ENTITY"), project=os.environ.get("DEPOT_PROJECT"))
        v = self.client.call(
            self.client.artifacts.GetArtifactVersion, pb.GetArtifactVersionRequest(name=p.version_resource)
        )
        if type is not None and v.type != type:
            raise InvalidArgumentError(f"{path} has type {v.type!r}, not {type!r}", field="type")
        return artifact_from_version(self.client, v)

    def undelete_artifact(self, path: str) -> UndeletedArtifact:
        """Restores a deleted version within its grace period.

        Args:
            path: ``entity/project/name:vN`` (a deleted version holds no alias,
                so it is named by its index).

        Returns:
            The version, live again, with the aliases it got back and those
            another version took meanwhile. ``latest`` returns to it when it
            is the newest live version. A version deleted by TTL expiry comes
            back kept forever (with its TTL it would expire again).

        Raises:
            NotFoundError: No such version, or it was purged.
            FailedPreconditionError: Its purge time has passed.
        """
        p = parse_artifact_path(path, entity=os.environ.get("DEPOT_ENTITY"), project=os.environ.get("DEPOT_PROJECT"))
        out = undelete_version(self.client, p.version_resource)
        return UndeletedArtifact(
            artifact_from_version(self.client, out.version), list(out.restored_aliases), list(out.lost_aliases)
        )

    def deleted_artifact_versions(self, path: str) -> list[Artifact]:
        """The deleted versions of a collection ``entity/project/name`` still
        restorable, newest first (members and admins only)."""
        parent = parse_artifact_path(path).collection_resource
        c = self.client
        versions = all_items(
            lambda t: c.call(
                c.artifacts.ListArtifactVersions,
                pb.ListArtifactVersionsRequest(parent=parent, page_size=100, page_token=t, show_deleted=True),
            ),
            lambda page: page.versions,
        )
        return [artifact_from_version(c, v) for v in versions]

    def artifact_versions(self, path: str) -> list[Artifact]:
        """Every committed version of a collection ``entity/project/name``, newest first."""
        parent = parse_artifact_path(path).collection_resource
        c = self.client
        versions = all_items(
            lambda t: c.call(
                c.artifacts.ListArtifactVersions,
                pb.ListArtifactVersionsRequest(parent=parent, page_size=100, page_token=t),
            ),
            lambda page: page.versions,
        )
        return [artifact_from_version(c, v) for v in versions]

    def lineage(self, path: str) -> Lineage:
        """The producing run and consuming runs of a version (consumers in the order they used it).

        Runs in entities the caller may not read are left out and counted in
        ``hidden_run_count``: a hidden producer is ``None``, as is the
        producer of a version no run logged.
        """
        return around(self.client, parse_artifact_path(path).version_resource)

    def delete_artifact_versions(
        self,
        parent: str,
        *,
        older_than: timedelta | None = None,
        without_aliases: bool = False,
        type: str | None = None,
        tag: str | None = None,
        metadata: dict[str, Any] | None = None,
        delete_aliases: bool = False,
        dry_run: bool = False,
        request_id: str | None = None,
    ) -> DeleteOperation:
        """Deletes every live version of a collection, or of a project's
        collections, that matches the filters (all optional, combined with AND).

        The server does the work in batches, as an operation; follow it with
        ``.wait(progress=...)`` or ``.refresh()``. Deleted versions stay
        restorable for the server's grace period. Versions linked into a
        registry are skipped, as are those with custom aliases unless
        ``delete_aliases``; the operation counts both.

        Args:
            parent: ``entity/project/name`` (one collection) or ``entity/project``.
            older_than: Only versions committed longer ago than this.
            without_aliases: Only versions holding no alias but ``latest``.
            type: Only collections of this artifact type.
            tag: Only versions with this tag.
            metadata: ``{key: value}``: only versions whose metadata has it.
            delete_aliases: Also delete versions holding custom aliases.
            dry_run: Delete nothing; the answer has the count and a sample.
            request_id: Names the operation: the same id re-attaches to it
                (and resumes it if its server died). Default: a new one.
        """
        return delete_versions(
            self.client,
            parent,
            older_than=older_than,
            without_aliases=without_aliases,
            type=type,
            tag=tag,
            metadata=metadata,
            delete_aliases=delete_aliases,
            dry_run=dry_run,
            request_id=request_id,
        )

    def delete_operation(self, name: str) -> DeleteOperation:
        """A bulk delete by its name (``operations/{id}``), to follow it again."""
        return delete_operation(self.client, name)
