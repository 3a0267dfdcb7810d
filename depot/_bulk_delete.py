"""Bulk delete by filter: ``Api().delete_artifact_versions(...)``, a long-running operation.

The server works through the matches in batches and keeps going if the
client goes away; :class:`DeleteOperation` follows it (``refresh``,
``wait``). Its ``request_id`` names it: calling again with the same id (the
CLI's ``--request-id``) re-attaches to the same operation, and resumes it if
the server that ran it died; ``Api().delete_operation(name)`` follows one by
name.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from depot.metadata.v1 import metadata_pb2 as pb

from ._client import Client
from ._client import request_id as new_request_id
from ._exceptions import FailedPreconditionError, InvalidArgumentError
from ._rules import check_name

__all__ = ["DeleteOperation", "bulk_parent", "delete_operation", "delete_versions"]

# How often ``wait`` asks for progress.
POLL_S = 0.5


class DeleteOperation:
    """A bulk delete (or a dry run's answer) and its progress.

    Attributes:
        name: ``operations/{id}`` ("" for a dry run).
        state: ``running``, ``done``, ``failed``, or ``dry_run``.
        matched: Versions matching the filter when it started (0 until the
            server counted them).
        deleted: Versions deleted so far.
        skipped_aliased: Matches left alone because they hold custom aliases
            (pass ``delete_aliases=True`` to delete those).
        skipped_linked: Matches left alone because they are linked into a
            registry (unlink them first).
        sample: Up to 20 version names: the matches (dry run) or the first deleted.
        error: Why it failed, when ``state == "failed"``.
    """

    def __init__(self, client: Client, op: pb.DeleteOperation):
        self._client = client
        self._set(op)

    def _set(self, op: pb.DeleteOperation) -> None:
        self.name = op.name
        self.state = op.state
        self.matched = op.matched
        self.deleted = op.deleted
        self.skipped_aliased = op.skipped_aliased
        self.skipped_linked = op.skipped_linked
        self.sample = list(op.sample)
        self.error = op.error

    @property
    def done(self) -> bool:
        """Whether it ended (a dry run ends at once)."""
        return self.state != "running"

    def refresh(self) -> DeleteOperation:
        """Reads its progress again; returns itself."""
        if self.name:
            self._set(
                self._client.call(
                    self._client.artifacts.GetDeleteOperation, pb.GetDeleteOperationRequest(name=self.name)
                )
            )
        return self

    def wait(
        self, progress: Callable[[DeleteOperation], None] | None = None, *, timeout: float | None = None
    ) -> DeleteOperation:
        """Follows it until it ends, calling ``progress(self)`` after every refresh.

        Raises:
            FailedPreconditionError: it failed (``error`` says why).
            TimeoutError: ``timeout`` seconds passed first (it keeps running
                on the server; wait again, or re-attach later).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if progress is not None:
                progress(self)
            if self.done:
                break
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"{self.name} is still running ({self.deleted:,}/{self.matched:,} deleted)")
            time.sleep(POLL_S)
            self.refresh()
        if self.state == "failed":
            raise FailedPreconditionError(f"{self.name} failed: {self.error}", reason="FAILED_PRECONDITION")
        return self

    def __repr__(self) -> str:
        return (
            f"DeleteOperation({self.name or 'dry run'}, {self.state}, matched={self.matched}, "
            f"deleted={self.deleted}, skipped_aliased={self.skipped_aliased}, skipped_linked={self.skipped_linked})"
        )


def bulk_parent(path: str) -> str:
    """``entity/project/name`` (one collection) or ``entity/project`` (every
    collection of the project) as a resource name."""
    parts = path.split("/")
    if ":" in path or len(parts) not in (2, 3):
        raise InvalidArgumentError(
            f"invalid bulk delete target {path!r}: expected ENTITY/PROJECT/NAME or ENTITY/PROJECT", field="parent"
        )
    for part, what in zip(parts, ("entity", "project", "artifact name"), strict=False):
        check_name(part, "parent", f"{what} in {path!r}")
    base = f"entities/{parts[0]}/projects/{parts[1]}"
    return f"{base}/artifacts/{parts[2]}" if len(parts) == 3 else base


def delete_versions(
    client: Client,
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
    """Starts a bulk delete (see ``Api.delete_artifact_versions``)."""
    req = pb.DeleteArtifactVersionsRequest(
        parent=bulk_parent(parent),
        type=type or "",
        without_aliases=without_aliases,
        tag=tag or "",
        delete_aliases=delete_aliases,
        dry_run=dry_run,
        request_id="" if dry_run else (request_id or new_request_id()),
    )
    if older_than is not None:
        if older_than < timedelta(0):
            raise InvalidArgumentError("older_than must not be negative", field="older_than")
        req.created_before.FromDatetime(datetime.now(UTC) - older_than)
    if metadata:
        if len(metadata) != 1:
            raise InvalidArgumentError("metadata filters on exactly one key", field="metadata")
        ((key, value),) = metadata.items()
        req.metadata_key = key
        req.metadata_value_json = json.dumps(value)
    return DeleteOperation(client, client.call(client.artifacts.DeleteArtifactVersions, req))


def delete_operation(client: Client, name: str) -> DeleteOperation:
    """A bulk delete by name (``operations/{id}``), to follow it again."""
    return DeleteOperation(
        client, client.call(client.artifacts.GetDeleteOperation, pb.GetDeleteOperationRequest(name=name))
    )
