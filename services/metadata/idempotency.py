"""Mutations retried with the same ``request_id`` return the first result (AIP-155).

A call claims (caller, method, request_id) by inserting a row at the start of
the transaction its work runs in, and stores the serialized response in that
row before the transaction commits. So the work and its record commit
together or not at all:

- a retry after the first call committed finds the row and gets the stored
  response, without running the work again;
- a retry while the first call is running waits on the row's unique index
  (PostgreSQL makes the second insert wait for the first transaction), then
  gets the stored response — or, if the first call failed and rolled back,
  runs the work itself;
- a call that fails leaves nothing behind, so nothing can be stuck.

A request_id names one request, not one slot. The row keeps a fingerprint of
the request (sha256 of the message serialized deterministically with its
``request_id`` cleared); the same id with a different request is refused
with INVALID_ARGUMENT, reason ``REQUEST_ID_REUSED``, and nothing runs.
Otherwise logging artifact B under A's id would answer A and create nothing.

A replay re-checks access, so a member removed since cannot read the stored
answer. Which checks a call needs depends on what its work resolved (a
version name may turn out to be a registry link, a commit finds its entity
by uid), so handlers do not restate them: while the work runs, every access
check that passes notes a ``Grant`` (:func:`granted`: Access.check for
entity roles, Registries for registry roles), the grants are stored with the
response, and a replay first asks the caller's ``still_holds`` for each of
them, the caller's *current* role against the role the first call needed.
One lost grant answers PERMISSION_DENIED. A call whose work passed no such
check (one that acts only on the caller itself, like its own API keys)
replays without one: what it relied on was the caller's identity, which the
retry re-proves by authenticating.

Rows written before migration 0003 have no fingerprint and no grants; they
replay as they always did, and age out within ``RETENTION``.

Results are kept for ``RETENTION``; the GC prunes older ones.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import timedelta

import asyncpg

from depot.services.common.errors import ErrorReason, InvalidArgument, PermissionDenied

from .db import Database, one

RETENTION = timedelta(days=1)
MAX_REQUEST_ID = 128


@dataclass(frozen=True, order=True)
class Grant:
    """An access check that passed: ``role`` (or more) on the ``kind`` ("entity"
    or "registry") with this id."""

    kind: str
    id: int
    role: int


# The grants noted by the work of the call running under Idempotency.once
# (None outside one: checks elsewhere note nothing).
_grants: ContextVar[set[Grant] | None] = ContextVar("depot_idempotency_grants", default=None)


def granted(kind: str, id: int, role: int) -> None:
    """Notes that an access check passed, for a replay of the current call to re-run."""
    noted = _grants.get()
    if noted is not None:
        noted.add(Grant(kind, int(id), int(role)))


def fingerprint(request: bytes) -> bytes:
    """What a request_id is bound to: sha256 of the request serialized
    deterministically, without its request_id."""
    return hashlib.sha256(request).digest()


class Idempotency:
    def __init__(self, db: Database):
        self._db = db

    async def once(
        self,
        caller_id: int,
        method: str,
        request_id: str,
        request_fingerprint: bytes,
        work: Callable[[], Awaitable[bytes]],
        still_holds: Callable[[Grant], Awaitable[bool]],
    ) -> bytes:
        """Runs ``work`` unless this request_id already ran; returns the stored bytes.

        ``work`` must do its queries through the same ``Database`` so that
        they join this transaction. ``still_holds`` answers, for a replay,
        whether the caller still has a grant the first call was given.
        """
        if not request_id:
            return await work()
        if len(request_id) > MAX_REQUEST_ID:
            raise InvalidArgument(f"request_id is longer than {MAX_REQUEST_ID} characters", field="request_id")
        key = (caller_id, method, request_id)
        async with self._db.transaction() as conn:
            claimed = await conn.fetchval(
                """
                INSERT INTO idempotency (caller_id, method, request_id, fingerprint) VALUES ($1, $2, $3, $5)
                ON CONFLICT (caller_id, method, request_id) DO UPDATE
                    SET create_time = now(), response = NULL, fingerprint = $5, grants = NULL
                    -- A record past the retention window counts as gone.
                    WHERE idempotency.create_time < now() - $4::interval
                RETURNING true
                """,
                *key,
                RETENTION,
                request_fingerprint,
            )
            if not claimed:
                # Committed by the first call (this statement sees its commit),
                # response included: claim and response commit together.
                stored = one(
                    await conn.fetchrow(
                        """
                        SELECT response, fingerprint, grants FROM idempotency
                        WHERE caller_id = $1 AND method = $2 AND request_id = $3
                        """,
                        *key,
                    )
                )
                await _may_replay(method, request_id, stored, request_fingerprint, still_holds)
                return bytes(stored["response"])
            noted: set[Grant] = set()
            token = _grants.set(noted)
            try:
                result = await work()
            finally:
                _grants.reset(token)
            await conn.execute(
                """
                UPDATE idempotency SET response = $4, grants = $5
                WHERE caller_id = $1 AND method = $2 AND request_id = $3
                """,
                *key,
                result,
                [[g.kind, g.id, g.role] for g in sorted(noted)],
            )
            return result


async def _may_replay(
    method: str,
    request_id: str,
    stored: asyncpg.Record,
    request_fingerprint: bytes,
    still_holds: Callable[[Grant], Awaitable[bool]],
) -> None:
    """Refuses a replay to a different request, or to a caller who lost access."""
    first = stored["fingerprint"]
    if first is None:  # written before fingerprints (migration 0003): replays as it did
        return
    if bytes(first) != request_fingerprint:
        raise InvalidArgument(
            f"request_id {request_id!r} was already used for a different {method} request; "
            "use a new request_id for a new request",
            field="request_id",
            reason=ErrorReason.REQUEST_ID_REUSED,
        )
    for kind, id_, role in stored["grants"] or []:
        if not await still_holds(Grant(kind, id_, role)):
            raise PermissionDenied(
                f"the access the first {method} call with this request_id was given is gone; "
                "its answer is not replayed",
                field="request_id",
            )
