"""Reading without a run, like ``wandb.Api``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from depot.metadata.v1 import metadata_pb2 as pb

from ._artifact import Artifact, RunInfo, artifact_from_version
from ._bulk_delete import DeleteOperation, delete_operation, delete_versions
from ._client import Client
from ._collections import ArtifactCollection, ArtifactType, list_collections, list_versions
from ._deletion import undelete_version
from ._exceptions import InvalidArgumentError, NotFoundError
from ._lineage import Lineage, around
from ._paging import all_items
from ._paths import ArtifactPath, parse_artifact_path
from ._rules import check_name


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
        self._caller: str | None = None

    @property
    def default_entity(self) -> str:
        """``DEPOT_ENTITY``, else the API key's user (W&B's ``Api().default_entity``)."""
        env = os.environ.get("DEPOT_ENTITY")
        if env:
            return env
        if self._caller is None:
            self._caller = self.client.call(self.client.access.GetCaller, pb.GetCallerRequest()).user
        return self._caller

    @property
    def default_project(self) -> str:
        return os.environ.get("DEPOT_PROJECT") or "uncategorized"

    def _path(self, path: str) -> ArtifactPath:
        # The caller is asked for only when the path lacks an entity.
        if not isinstance(path, str) or path.split(":", 1)[0].count("/") >= 2:
            return parse_artifact_path(path)
        return parse_artifact_path(path, entity=self.default_entity, project=self.default_project)

    def _project(self, project: str | None) -> tuple[str, str]:
        """``entity/project`` or ``project`` (default entity), or the default project."""
        if project is None:
            return self.default_entity, self.default_project
        if not isinstance(project, str):
            raise InvalidArgumentError(f"project must be a string, not {type(project).__name__}", field="project")
        entity, _, name = project.rpartition("/")
        return check_name(entity or self.default_entity, "project", "entity"), check_name(name, "project", "project")

    def run(self, path: str) -> RunInfo:
        """The run ``entity/project/run_id`` (W&B's ``Api().run``), read-only."""
        parts = path.split("/") if isinstance(path, str) else []
        if len(parts) == 2:
            parts = [self.default_entity, *parts]
        if len(parts) != 3:
            raise InvalidArgumentError(f"a run path is entity/project/run_id, not {path!r}", field="path")
        for p in parts:
            check_name(p, "path", "run path part")
        name = f"entities/{parts[0]}/projects/{parts[1]}/runs/{parts[2]}"
        return RunInfo._from_pb(
            self.client, self.client.call(self.client.artifacts.GetRun, pb.GetRunRequest(name=name))
        )

    def artifact_collections(
        self, project_name: str | None = None, type_name: str | None = None, per_page: int = 50
    ) -> list[ArtifactCollection]:
        """A project's collections (of one type when given), W&B's ``artifact_collections``.

        ``per_page`` is accepted for W&B code; every page is read.
        """
        entity, project = self._project(project_name)
        if type_name is not None:
            check_name(type_name, "type_name", "artifact type")
        found = list_collections(self.client, entity, project, type_name or "")
        return [ArtifactCollection._from_pb(self.client, c) for c in found]

    def artifact_collection(self, type_name: str, name: str) -> ArtifactCollection:
        """The collection ``[[entity/]project/]name`` of type ``type_name``.

        Raises:
            NotFoundError: No collection of that name and type.
        """
        p = self._path(name.split(":", 1)[0] if isinstance(name, str) else name)
        check_name(type_name, "type_name", "artifact type")
        for c in list_collections(self.client, p.entity, p.project, type_name):
            if c.name.rsplit("/", 1)[-1] == p.name:
                return ArtifactCollection._from_pb(self.client, c)
        raise NotFoundError(f"no {type_name} collection {p.entity}/{p.project}/{p.name}", field="name")

    def artifact_collection_exists(self, name: str, type: str) -> bool:
        """Whether the collection ``[[entity/]project/]name`` of that type exists (and may be read)."""
        try:
            self.artifact_collection(type, name)
        except NotFoundError:
            return False
        return True

    def artifact_exists(self, name: str, type: str | None = None) -> bool:
        """Whether ``[[entity/]project/]name[:alias]`` names a live version (of ``type`` when given)."""
        try:
            self.artifact(name, type)
        except (NotFoundError, InvalidArgumentError) as e:
            if isinstance(e, InvalidArgumentError) and e.field != "type":
                raise
            return False
        return True

    def artifacts(
        self, type_name: str, name: str, per_page: int = 50, tags: list[str] | str | None = None
    ) -> list[Artifact]:
        """The live versions of the collection ``[[entity/]project/]name`` of type ``type_name``, newest first.

        Args:
            tags: Only versions with this tag (or every tag of this list).

        Raises:
            NotFoundError: No such collection of that type.
        """
        coll = self.artifact_collection(type_name, name)
        wanted = [tags] if isinstance(tags, str) else list(tags or [])
        found = list_versions(self.client, coll._resource, wanted[0] if wanted else "")
        return [a for a in found if all(t in a.tags for t in wanted[1:])]

    def artifact_type(self, type_name: str, project: str | None = None) -> ArtifactType:
        """The type ``type_name`` of a project (``entity/project`` or ``project``).

        Raises:
            NotFoundError: No collection of the project has that type.
        """
        entity, proj = self._project(project)
        check_name(type_name, "type_name", "artifact type")
        t = ArtifactType(type_name, entity, proj, self.client)
        if not list_collections(self.client, entity, proj, type_name):
            raise NotFoundError(f"project {entity}/{proj} has no artifact of type {type_name!r}", field="type_name")
        return t

    def artifact_types(self, project: str | None = None) -> list[ArtifactType]:
        """The artifact types of a project's collections, by name."""
        entity, proj = self._project(project)
        names = sorted({c.type for c in list_collections(self.client, entity, proj)})
        return [ArtifactType(n, entity, proj, self.client) for n in names]

    def artifact(self, path: str, type: str | None = None) -> Artifact:
        """The version named by a path (``:latest`` when no ref is given).

        Paths: ``entity/project/name:ref``, or a registry link
        ``{org}/wandb-registry-{registry}/{collection}:ref`` (also
        ``{org}/registry/{registry}/{collection}:ref``), which gives a
        :class:`LinkedArtifact`.
        """
        p = self._path(path)
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

    def artifact_versions(self, type_name: str, name: str | None = None, per_page: int = 50) -> list[Artifact]:
        """Every live version of a collection, newest first.

        W&B's form ``artifact_versions(type_name, name)`` checks the type;
        Depot's older one-argument form ``artifact_versions("entity/project/name")``
        takes the path alone.
        """
        if name is None:
            return list_versions(self.client, self._path(type_name).collection_resource)
        return self.artifacts(type_name, name, per_page)

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
