"""Runs: the unit of work that produces and consumes artifacts (``depot.init``)."""

from __future__ import annotations

import builtins
import concurrent.futures
import contextvars
import json
import os
from types import TracebackType
from typing import Any

from depot.metadata.v1 import metadata_pb2 as pb

from ._artifact import (
    DEFAULT_PROJECT,
    Artifact,
    RunInfo,
    artifact_from_version,
    log_artifact,
    logged_into,
    settable_aliases,
)
from ._client import Client, request_id
from ._exceptions import DepotError, InvalidArgumentError, UnsupportedError
from ._paths import parse_artifact_path
from ._rules import check_name


class Run:
    """A run records what it logged (produced) and used (consumed).

    Use it as a context manager, or call :meth:`finish`.
    """

    def __init__(self, client: Client, run: pb.Run):
        self._client = client
        self._run = run
        parts = run.name.split("/")
        self.entity, self.project, self.id = parts[1], parts[3], parts[5]
        # The org of registry paths written without one.
        self.org = os.environ.get("DEPOT_ORG")
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="depot-log")
        self._pending: list[Artifact] = []

    @property
    def name(self) -> str:
        """The run's resource name, ``entities/{e}/projects/{p}/runs/{id}``."""
        return self._run.name

    @property
    def job_type(self) -> str:
        return self._run.job_type

    def log_artifact(
        self,
        artifact_or_path: Artifact | str | os.PathLike[str],
        name: str | None = None,
        type: str | None = None,
        aliases: list[str] | None = None,
        tags: list[str] | None = None,
    ) -> Artifact:
        """Uploads and commits an artifact in the background, like W&B's; ``artifact.wait()`` blocks.

        Args:
            artifact_or_path: An Artifact, or a file, directory or reference
                URI (``s3://...``) to log as a new artifact, as W&B does.
            name: For a path: the artifact name (default ``run-{id}-{basename}``).
            type: For a path: the artifact type (default ``unspecified``).
            aliases: Added to the artifact's own; ``latest`` is accepted and
                is Depot's to place (always on the newest version).
            tags: Added to the artifact's tags.

        Identical content returns the existing version as stored, with the
        aliases added (see ``Artifact.metadata_applied``).
        """
        if isinstance(aliases, str):
            raise InvalidArgumentError("aliases is a list of strings, not one string", field="aliases")
        alias_list = settable_aliases(aliases)
        if isinstance(tags, str):
            raise InvalidArgumentError("tags is a list of strings, not one string", field="tags")
        artifact = self._as_artifact(artifact_or_path, name, type)
        if artifact._future is not None or artifact._version is not None:
            raise DepotError("this artifact was logged already")
        if tags:
            artifact.tags = [*artifact.tags, *tags]
        parent = f"entities/{self.entity}/projects/{self.project}"

        def work() -> Artifact:
            return logged_into(
                artifact, self._client, log_artifact(self._client, parent, self.name, artifact, alias_list)
            )

        # In the caller's context: its current trace span (if any) is the parent of the upload's calls.
        artifact._future = self._pool.submit(contextvars.copy_context().run, work)
        self._pending.append(artifact)
        return artifact

    def _as_artifact(self, value: object, name: str | None, type: str | None) -> Artifact:
        if isinstance(value, Artifact):
            return value
        if not isinstance(value, (str, os.PathLike)):
            raise InvalidArgumentError(
                f"log_artifact takes a depot.Artifact or a path, not {builtins.type(value).__name__}"
            )
        path = os.fspath(value)
        art = Artifact(name or f"run-{self.id}-{os.path.basename(path.rstrip('/'))}", type or "unspecified")
        if os.path.isfile(path):
            art.add_file(path)
        elif os.path.isdir(path):
            art.add_dir(path)
        elif "://" in path:
            art.add_reference(path)
        else:
            raise InvalidArgumentError(
                f"{path!r} is no file, directory or reference URI (s3://..., https://..., file://...)",
                field="artifact_or_path",
            )
        return art

    def use_artifact(
        self,
        artifact_or_path: Artifact | str,
        type: str | None = None,
        aliases: list[str] | None = None,
        use_as: str | None = None,
    ) -> Artifact:
        """Resolves ``name:alias`` (or a full path) and records this run as a consumer, like W&B's.

        Args:
            artifact_or_path: A logged Artifact, or ``[[entity/]project/]name[:alias]``.
            type: The type the version must have.
            aliases: Aliases to add to the version (``latest`` is accepted and left to Depot).
            use_as: Accepted for W&B code; not used by Depot.

        Raises:
            UnsupportedError: An Artifact never logged (W&B would upload it
                as used; in Depot, log it first).
        """
        alias_list = settable_aliases(aliases)
        if isinstance(artifact_or_path, Artifact):
            if artifact_or_path._version is None and artifact_or_path._future is None:
                raise UnsupportedError(
                    "use_artifact of an artifact never logged: Depot records use of logged versions only; "
                    "log it with run.log_artifact first"
                )
            path = artifact_or_path.qualified_name
        else:
            path = artifact_or_path
        p = parse_artifact_path(path, entity=self.entity, project=self.project, org=self.org)
        if type is not None:
            # Checked before the use is recorded: a refused call leaves no lineage edge.
            found = self._client.call(
                self._client.artifacts.GetArtifactVersion, pb.GetArtifactVersionRequest(name=p.version_resource)
            )
            if found.type != type:
                raise InvalidArgumentError(f"{path} has type {found.type!r}, not {type!r}", field="type")
        v = self._client.call(
            self._client.artifacts.UseArtifactVersion,
            pb.UseArtifactVersionRequest(run=self.name, version=p.version_resource, request_id=request_id()),
        )
        if alias_list:
            v = self._client.call(
                self._client.artifacts.AddAliases,
                pb.AddAliasesRequest(version=v.name, aliases=alias_list, request_id=request_id()),
            )
        return artifact_from_version(self._client, v)

    def link_artifact(self, artifact: Artifact, target_path: str, aliases: list[str] | None = None) -> Artifact:
        """Links a logged artifact into a registry collection (waits for its log first).

        Args:
            artifact: An artifact this run logged (or any logged artifact).
            target_path: ``{org}/wandb-registry-{registry}/{collection}`` or
                ``{org}/registry/{registry}/{collection}``; the collection is
                created if absent.
            aliases: Aliases of the link in that collection.
        """
        return artifact.link(target_path, aliases)

    def logged_artifacts(self) -> list[Artifact]:
        """Versions this run has logged (committed so far)."""
        return RunInfo(self.name, self.job_type, "", self._client).logged_artifacts()

    def used_artifacts(self) -> list[Artifact]:
        """Versions this run has used."""
        return RunInfo(self.name, self.job_type, "", self._client).used_artifacts()

    def finish(self, exit_code: int = 0) -> None:
        """Waits for background logs, then marks the run finished (or failed)."""
        errors = []
        failed = False
        for a in self._pending:
            seen = a._error_reported
            try:
                a.wait()
            except Exception as e:  # noqa: BLE001 - reported after the run is closed
                failed = True
                if not seen:
                    errors.append(e)
        self._pool.shutdown()
        state = "finished" if exit_code == 0 and not failed else "failed"
        self._client.call(
            self._client.artifacts.FinishRun,
            pb.FinishRunRequest(name=self.name, state=state, request_id=request_id()),
        )
        if errors:
            raise errors[0]

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.finish(1 if exc_type else 0)


def init(
    entity: str | None = None,
    project: str | None = None,
    job_type: str | None = None,
    name: str | None = None,
    config: dict[str, Any] | None = None,
    id: str | None = None,
    tags: list[str] | None = None,
    mode: str | None = None,
    *,
    address: str | None = None,
    api_key: str | None = None,
    tls: bool | None = None,
    tls_ca: str | None = None,
    insecure: bool | None = None,
) -> Run:
    """Starts a run, like ``wandb.init``.

    Args:
        entity: The user or team; default ``DEPOT_ENTITY`` or the API key's user.
        project: Default ``DEPOT_PROJECT`` or ``uncategorized``.
        job_type: What the run does (``train``, ``eval``...).
        name: The run id when ``id`` is not given (Depot runs have no
            separate display name); generated when both are omitted.
        config: JSON-serializable settings stored with the run.
        id: The run id, as W&B's ``id``.
        tags: Accepted for W&B code; Depot runs carry no tags (artifact
            versions do: ``log_artifact(tags=...)``).
        mode: ``online`` (or None). ``offline`` and ``disabled`` raise
            :class:`UnsupportedError`: Depot logs to its server as it goes.
        address: ``host:port``, ``grpcs://host:port`` (TLS) or
            ``grpc://host:port`` of Depot; default ``DEPOT_ADDRESS``.
        api_key: Default ``DEPOT_API_KEY`` (or the file in ``DEPOT_API_KEY_FILE``).
        tls: Force TLS on or off; default: TLS for ``grpcs://`` or when a
            CA is configured.
        tls_ca: PEM file of the CA to verify the server with; default
            ``DEPOT_TLS_CA``, else the system roots.
        insecure: Allow plaintext to a non-loopback host (the API key then
            crosses the network in clear); default ``DEPOT_INSECURE``.
    """
    if mode not in (None, "online"):
        raise UnsupportedError(
            f"wandb.init(mode={mode!r}): Depot has no offline or disabled runs; every call talks to the server"
        )
    if tags is not None and (isinstance(tags, str) or not all(isinstance(t, str) for t in tags)):
        raise InvalidArgumentError("tags must be a list of strings", field="tags")
    name = id or name
    entity = entity or os.environ.get("DEPOT_ENTITY")
    if entity:
        check_name(entity, "entity", "entity")
    project = check_name(project or os.environ.get("DEPOT_PROJECT") or DEFAULT_PROJECT, "project", "project")
    if name:
        check_name(name, "name", "run id")
    if job_type:
        check_name(job_type, "job_type", "job type")
    config_json = _config_json(config)
    client = Client(address, api_key, tls=tls, tls_ca=tls_ca, insecure=insecure)
    if not entity:
        entity = client.call(client.access.GetCaller, pb.GetCallerRequest()).user
    run = client.call(
        client.artifacts.CreateRun,
        pb.CreateRunRequest(
            parent=f"entities/{entity}/projects/{project}",
            run_id=name or "",
            run=pb.Run(job_type=job_type or "", config_json=config_json),
            request_id=request_id(),
        ),
    )
    return Run(client, run)


def _config_json(config: object) -> str:
    if not config:
        return ""
    if not isinstance(config, dict):
        raise InvalidArgumentError(f"config must be a dict, not {type(config).__name__}", field="config")
    try:
        return json.dumps(config, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise InvalidArgumentError(f"config is not JSON-serializable: {e}", field="config") from None
