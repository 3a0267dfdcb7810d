"""Reference listings as long-running operations (ResolveReferences; domain, no grpc).

A listing of millions of objects outlives any sensible call deadline and
any single connection, so it runs as a task of its own, named by
(entity, request_id), and callers *follow* it: each attached stream sees the
progress at most every ``interval`` and then the result. A caller whose
connection dropped calls again with the same request_id and re-attaches to
the same task (running, or finished and kept for ``retention_s``) instead of
listing again; the same id with another header is refused.

A request_id is scoped to its entity, not to the caller: anyone with WRITE
on the entity could start the same listing anyway, and a job that retries
under another key (a rotated key, a second worker of the same pipeline)
re-attaches instead of listing twice. The result is a manifest id of that
entity, which every WRITE holder may use.

Nobody watching means nobody will use the result: when no stream has been
attached for ``grace_s`` the task is cancelled, which stops the S3 listing
(its requests are awaited in that task).

Only a result worth replaying is kept: a listing that was cancelled or
failed on something retrying may cure (an unreachable S3 or database, a full
disk) leaves the registry, so calling again with the same request_id lists
again. One entity runs at most ``max_per_entity`` listings at once, so one
team cannot take every slot of the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from depot.services.common.errors import (
    Aborted,
    DepotError,
    InvalidArgument,
    ResourceExhausted,
    StorageFull,
    Unavailable,
)

from .manifests import StoredManifest
from .references import ListingProgress

MAX_REQUEST_ID = 128
_REQUEST_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:-")

Start = Callable[[ListingProgress], Coroutine[Any, Any, StoredManifest]]


@dataclass(frozen=True)
class OperationSettings:
    # An operation nobody follows for this long is cancelled (its listing stops).
    grace_s: float = 30.0
    # A finished operation's result is kept this long for callers re-attaching.
    retention_s: float = 600.0
    # Operations kept at once (running + finished); the oldest finished go first.
    max_operations: int = 1000
    # Listings one entity may run at once (finished ones do not count).
    max_per_entity: int = 8
    # Progress messages at most this often per attached stream.
    interval_s: float = 1.0


@dataclass(frozen=True)
class Progress:
    objects: int
    bytes: int
    # Set on the last message only.
    manifest: StoredManifest | None = None


def check_request_id(request_id: str) -> str:
    if not 1 <= len(request_id) <= MAX_REQUEST_ID or not set(request_id) <= _REQUEST_ID_CHARS:
        raise InvalidArgument(
            f"request_id must be 1-{MAX_REQUEST_ID} characters of A-Z a-z 0-9 _ . : -", field="request_id"
        )
    return request_id


def _worth_keeping(task: asyncio.Task[StoredManifest]) -> bool:
    """Whether a finished listing's outcome is what listing again would give.

    A result or a refusal (bad input, too many objects) is; a cancellation or
    an error that retrying may cure is not, so it is not replayed.
    """
    if task.cancelled():
        return False
    exc = task.exception()
    if exc is None:
        return True
    return isinstance(exc, DepotError) and not isinstance(exc, (Unavailable, Aborted, StorageFull))


class _Operation:
    def __init__(
        self,
        key: tuple[str, str],
        fingerprint: bytes,
        task: asyncio.Task[StoredManifest],
        progress: ListingProgress,
    ) -> None:
        self.key = key
        self.fingerprint = fingerprint
        self.task = task
        self.progress = progress
        self.attached = 0
        self.finished_at: float | None = None
        self.idle: asyncio.TimerHandle | None = None
        # Set when the grace ran out: the task may take a moment to stop.
        self.cancelling = False

    @property
    def abandoned(self) -> bool:
        """Cancelled because nobody followed it (or stopping): a new attach starts over.

        The cancel is requested before the task ends; an attach in between
        must not follow a task bound to end CANCELLED.
        """
        return self.cancelling or self.task.cancelled()

    @property
    def running(self) -> bool:
        return not self.task.done() and not self.cancelling

    def abandon(self) -> None:
        self.cancelling = True
        self.task.cancel()


class Operations:
    """The registry of running and recently finished listings of this server process."""

    def __init__(self, settings: OperationSettings | None = None) -> None:
        self.settings = settings or OperationSettings()
        self._ops: dict[tuple[str, str], _Operation] = {}

    @contextlib.asynccontextmanager
    async def attach(
        self, entity: str, request_id: str, fingerprint: bytes, start: Start
    ) -> AsyncIterator[AsyncIterator[Progress]]:
        """Follows the operation (entity, request_id), starting it with ``start`` if new.

        Yields an iterator of progress messages that ends with the result
        (or raises the operation's error). Leaving the context detaches.
        """
        op = self._get(entity, check_request_id(request_id), fingerprint, start)
        op.attached += 1
        if op.idle is not None:
            op.idle.cancel()
            op.idle = None
        try:
            yield self._follow(op)
        finally:
            op.attached -= 1
            if not op.attached and not op.task.done():
                op.idle = asyncio.get_running_loop().call_later(self.settings.grace_s, op.abandon)

    def _get(self, entity: str, request_id: str, fingerprint: bytes, start: Start) -> _Operation:
        self._expire()
        key = (entity, request_id)
        op = self._ops.get(key)
        if op is not None and not op.abandoned:
            if op.fingerprint != fingerprint:
                raise InvalidArgument(
                    f"request_id {request_id!r} names a listing of other references; use a new request_id",
                    field="request_id",
                )
            return op
        running = sum(1 for (e, _), o in self._ops.items() if e == entity and o.running)
        if running >= self.settings.max_per_entity:
            raise ResourceExhausted(
                f"{running} reference listings of {entity!r} are running, the most one entity may run at once; "
                "wait for one to finish (re-attach with its request_id) or try again later"
            )
        if len(self._ops) >= self.settings.max_operations:
            finished = [(o.finished_at, k) for k, o in self._ops.items() if o.finished_at is not None]
            if not finished:
                raise ResourceExhausted(
                    f"{len(self._ops)} reference listings are running on this server; try again later"
                )
            del self._ops[min(finished)[1]]
        progress = ListingProgress()
        task = asyncio.create_task(start(progress), name=f"depot-resolve-{entity}-{request_id}")
        op = _Operation(key, fingerprint, task, progress)
        task.add_done_callback(lambda t: self._finished(op, t))
        self._ops[key] = op
        return op

    def _finished(self, op: _Operation, task: asyncio.Task[StoredManifest]) -> None:
        op.finished_at = time.monotonic()
        if op.idle is not None:
            op.idle.cancel()
            op.idle = None
        if not task.cancelled():
            task.exception()  # retrieved here; followers get it from task.result()
        # Followers hold the operation itself and still see its end; a later
        # attach lists again. An abandoned operation may already be replaced.
        if not _worth_keeping(task) and self._ops.get(op.key) is op:
            del self._ops[op.key]

    def _expire(self) -> None:
        cutoff = time.monotonic() - self.settings.retention_s
        for key in [k for k, o in self._ops.items() if o.finished_at is not None and o.finished_at < cutoff]:
            del self._ops[key]

    async def _follow(self, op: _Operation) -> AsyncIterator[Progress]:
        while True:
            await asyncio.wait([op.task], timeout=self.settings.interval_s)
            objects, size = op.progress.snapshot()
            if op.task.done():
                # Re-raises the listing's error; a cancelled (abandoned) one is
                # CancelledError, which ends this stream as cancelled too.
                yield Progress(objects, size, op.task.result())
                return
            yield Progress(objects, size)

    async def close(self) -> None:
        """Cancels the listings still running (server shutdown) and waits for them to stop."""
        tasks = [op.task for op in self._ops.values() if not op.task.done()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


__all__ = ["OperationSettings", "Operations", "Progress", "check_request_id"]
