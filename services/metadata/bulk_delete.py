"""Bulk delete by filter: DeleteArtifactVersions as a long-running operation (domain; no grpc).

A user with millions of versions deletes them with one call. The call
validates, authorizes and records an operation (``delete_operations``, one
row per operation, idempotent by the caller's request_id) and returns at
once; a runner inside every metadata server works through the matches:

- the matches are the committed versions of one collection, or of every
  collection of a project (narrowed by type), that satisfy the filters and
  were committed before the operation started (a version logged while it
  runs is never deleted by it);
- collection by collection in id order, then by version index through the
  ``UNIQUE (collection_id, index)`` index, ``BATCH`` versions per short
  transaction that deletes them (deletion.delete_versions, the one place
  that deletes) and advances the cursor ``(collection, index)`` and the
  counters in the same commit: a batch is done once or not at all;
- a runner holds a lease on the operation, renewed with every batch. One
  that is stopped gives it back; one that dies (process killed) leaves it
  to expire, after which any server's runner — or the next call with the
  same request_id, which wakes its server's runner — claims it and
  continues from the cursor;
- every batch re-checks that the caller still may write to the entity
  (their role, in the batch's transaction): a member removed while the
  operation runs stops it at the next batch, failed with the reason.

A dry run answers on the request path with the count and a sample of names,
and writes nothing. It is bounded: it counts up to ``DRY_RUN_COUNT_CAP``
matches (beyond, ``matched`` is one more than the cap and ``error`` says so)
and its statements get ``DRY_RUN_TIMEOUT_MS``, not the runner's scan time.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from depot.services.common.errors import DepotError, ErrorReason, InvalidArgument, NotFound, PermissionDenied

from . import names
from .access import READ, WRITE, Access, Principal
from .db import Connection, Database
from .deletion import delete_versions
from .idempotency import MAX_REQUEST_ID
from .listings import VersionFilter
from .projects import Projects

log = logging.getLogger(__name__)

# Versions per transaction: each holds its rows' locks for a few
# milliseconds, and a 5-million-version delete is 5,000 commits.
BATCH = 1000
# How long a runner's claim holds without a renewal (every batch renews it):
# a dead runner's operation waits this long for the next one.
LEASE = timedelta(seconds=30)
# How often an idle runner looks for operations nobody holds (new ones on
# its own server wake it at once).
POLL_S = 5.0
SAMPLE = 20
# Counting the matches and walking past non-matching versions scan more than
# a keyed query; they get this long instead of db.QUERY_TIMEOUT_S.
SCAN_TIMEOUT_MS = 300_000
# A dry run holds a request and a connection: it counts this many matches at
# most, and a filter that needs more than DRY_RUN_TIMEOUT_MS to find them
# answers DEADLINE_EXCEEDED (the operation itself counts them all).
DRY_RUN_COUNT_CAP = 1_000_000
DRY_RUN_TIMEOUT_MS = 30_000

_PROJECT_ID = """
    SELECT p.id FROM projects p JOIN entities e ON e.id = p.entity_id WHERE e.name = $1 AND p.name = $2
"""
# The next collection of the operation after $2 ($1 project, $3 name or NULL, $4 type or '').
_NEXT_COLLECTION = """
    SELECT id FROM collections
    WHERE project_id = $1 AND id > $2 AND ($3::text IS NULL OR name = $3) AND ($4 = '' OR type = $4)
    ORDER BY id LIMIT 1
"""
_OPERATION = """
    SELECT o.*, e.name AS entity FROM delete_operations o JOIN entities e ON e.id = o.entity_id WHERE o.id = $1
"""
_INSERT = """
    INSERT INTO delete_operations (id, caller_id, request_id, fingerprint, entity_id, filter, delete_aliases)
    VALUES ($1, $2, $3, $4, $5, $6, $7)
    ON CONFLICT (caller_id, request_id) DO NOTHING RETURNING id
"""
_BY_REQUEST = "SELECT id, fingerprint FROM delete_operations WHERE caller_id = $1 AND request_id = $2"
# The oldest running operation whose lease is free or expired, claimed.
_CLAIM = """
    UPDATE delete_operations SET lease_owner = $1, lease_until = now() + $2::interval
    WHERE id = (SELECT id FROM delete_operations
                WHERE state = 'running' AND (lease_until IS NULL OR lease_until < now())
                ORDER BY create_time LIMIT 1 FOR UPDATE SKIP LOCKED)
    RETURNING id
"""
# The operation, locked for one batch, if this runner still holds it.
_HELD = """
    SELECT * FROM delete_operations WHERE id = $1 AND lease_owner = $2 AND state = 'running' FOR UPDATE
"""
# Who started an operation, as the access checks know a caller.
_CALLER = "SELECT id, name, superuser FROM entities WHERE id = $1"
_RELEASE = "UPDATE delete_operations SET lease_until = NULL WHERE id = $1 AND lease_owner = $2"
_FAIL = """
    UPDATE delete_operations SET state = 'failed', error = $3, update_time = now(), lease_until = NULL
    WHERE id = $1 AND lease_owner = $2
"""


@dataclass(frozen=True)
class BulkFilter:
    """Which versions a bulk delete matches, validated when built."""

    project: names.ProjectName
    # One collection, or "" for every collection of the project.
    artifact: str = ""
    type: str = ""
    created_before: datetime | None = None
    without_aliases: bool = False
    tag: str = ""
    metadata_key: str = ""
    metadata_value_json: str = ""

    @classmethod
    def parse(cls, parent: str, **filters: Any) -> BulkFilter:
        """From a parent name (a collection or a project) and the filters;
        INVALID_ARGUMENT names the field that is wrong."""
        if not parent:
            raise InvalidArgument("parent is required: a collection or a project", field="parent")
        if "/artifacts/" in parent:
            coll = names.parse_collection(parent)
            project, artifact = coll.project, coll.artifact
        else:
            project, artifact = names.parse_project(parent), ""
        if filters.get("type"):
            names.check_part(filters["type"], "type", "artifact type")
        # The same rules as ListArtifactVersions' filters.
        VersionFilter(
            tag=filters.get("tag", ""),
            created_before=filters.get("created_before"),
            metadata_key=filters.get("metadata_key", ""),
            metadata_value_json=filters.get("metadata_value_json", ""),
        )
        return cls(project, artifact, **filters)

    @property
    def parent(self) -> str:
        return f"{self.project}/artifacts/{self.artifact}" if self.artifact else str(self.project)

    def to_json(self) -> dict[str, Any]:
        return {
            "parent": self.parent,
            "type": self.type,
            "created_before": self.created_before.isoformat() if self.created_before else None,
            "without_aliases": self.without_aliases,
            "tag": self.tag,
            "metadata_key": self.metadata_key,
            "metadata_value_json": self.metadata_value_json,
        }

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> BulkFilter:
        before = value["created_before"]
        return cls.parse(
            value["parent"],
            type=value["type"],
            created_before=datetime.fromisoformat(before) if before else None,
            without_aliases=value["without_aliases"],
            tag=value["tag"],
            metadata_key=value["metadata_key"],
            metadata_value_json=value["metadata_value_json"],
        )


class _Where:
    """The matches' SQL: ``FROM versions v JOIN collections c ... WHERE ...``
    with one condition per filter given (as ListArtifactVersions builds it,
    so each combination is its own plan)."""

    def __init__(self, project_id: int, f: BulkFilter, until: datetime | None):
        self.args: list[Any] = [project_id]
        where = ["c.project_id = $1", "v.state = 'committed'"]
        if f.artifact:
            where.append(f"c.name = {self.arg(f.artifact)}")
        if f.type:
            where.append(f"c.type = {self.arg(f.type)}")
        if f.created_before:
            where.append(f"v.commit_time < {self.arg(f.created_before)}")
        if until:
            where.append(f"v.commit_time <= {self.arg(until)}")
        if f.without_aliases:
            where.append("NOT EXISTS (SELECT 1 FROM aliases a WHERE a.version_id = v.id AND a.alias <> 'latest')")
        if f.tag:
            where.append(f"v.tags @> ARRAY[{self.arg(f.tag)}::text]")
        if f.metadata_key:
            match = self.arg({f.metadata_key: json.loads(f.metadata_value_json)})
            key = self.arg(f.metadata_key)
            where.append(f"v.metadata @> {match}::jsonb AND v.metadata -> {key}::text = {match}::jsonb -> {key}::text")
        self.sql = " FROM versions v JOIN collections c ON c.id = v.collection_id WHERE " + " AND ".join(where)

    def arg(self, value: Any) -> str:
        self.args.append(value)
        return f"${len(self.args)}"


@dataclass(frozen=True)
class Operation:
    name: str
    # "running" | "done" | "failed" | "dry_run"
    state: str
    matched: int
    deleted: int = 0
    skipped_aliased: int = 0
    skipped_linked: int = 0
    sample: list[str] = field(default_factory=list)
    error: str = ""
    create_time: datetime | None = None
    update_time: datetime | None = None


def _operation(row: asyncpg.Record) -> Operation:
    return Operation(
        name=f"operations/{row['id']}",
        state=row["state"],
        matched=row["matched"] or 0,
        deleted=row["deleted"],
        skipped_aliased=row["skipped_aliased"],
        skipped_linked=row["skipped_linked"],
        sample=list(row["sample"]),
        error=row["error"],
        create_time=row["create_time"],
        update_time=row["update_time"],
    )


def _operation_id(name: str) -> str:
    parts = name.split("/")
    if len(parts) != 2 or parts[0] != "operations" or not parts[1]:
        raise InvalidArgument(f"invalid operation name {name!r}: expected operations/{{id}}", field="name")
    try:
        return uuid.UUID(parts[1]).hex
    except ValueError:
        raise InvalidArgument(f"invalid operation name {name!r}: no such operation id", field="name") from None


class BulkDeletes:
    """DeleteArtifactVersions and GetDeleteOperation, and the runner that does the work."""

    def __init__(
        self,
        db: Database,
        access: Access,
        projects: Projects,
        *,
        grace: timedelta,
        batch: int = BATCH,
        lease: timedelta = LEASE,
        poll_s: float = POLL_S,
    ):
        self._db = db
        self._access = access
        self._projects = projects
        self._grace = grace
        self._batch = batch
        self._lease = lease
        self._poll_s = poll_s
        self._wake = asyncio.Event()

    async def _project_id(self, f: BulkFilter) -> int:
        """The parent's project id; NOT_FOUND naming a missing project or collection."""
        await self._projects.must_exist(f.project, f.artifact)
        pid = await self._db.fetchval(_PROJECT_ID, f.project.entity, f.project.project)
        return int(pid)

    async def dry_run(self, who: Principal, f: BulkFilter, *, cap: int = DRY_RUN_COUNT_CAP) -> Operation:
        """The count (up to ``cap``) and a sample of what a real run would match now; deletes nothing."""
        await self._access.require(who, f.project.entity, WRITE)
        where = _Where(await self._project_id(f), f, None)
        async with self._db.transaction() as conn:
            await conn.execute(f"SET LOCAL statement_timeout = {DRY_RUN_TIMEOUT_MS}")
            matched = await conn.fetchval(
                f"SELECT count(*) FROM (SELECT 1{where.sql} LIMIT {int(cap) + 1}) m",
                *where.args,
                timeout=DRY_RUN_TIMEOUT_MS / 1000,
            )
            rows = await conn.fetch(
                "SELECT c.name, v.index" + where.sql + f" ORDER BY c.id, v.index LIMIT {SAMPLE}", *where.args
            )
        sample = [f"{f.project}/artifacts/{r['name']}/versions/v{r['index']}" for r in rows]
        error = f"more than {cap:,} versions match: the dry run stopped counting there" if matched > cap else ""
        return Operation(name="", state="dry_run", matched=int(matched), sample=sample, error=error)

    async def start(
        self, who: Principal, f: BulkFilter, *, delete_aliases: bool, request_id: str, fingerprint: bytes
    ) -> Operation:
        """Records the operation (or finds the one this request_id named) and
        wakes the runner; answers it as it stands."""
        if not request_id:
            raise InvalidArgument("request_id is required (it names the operation); or use dry_run", field="request_id")
        if len(request_id) > MAX_REQUEST_ID:
            raise InvalidArgument(f"request_id is longer than {MAX_REQUEST_ID} characters", field="request_id")
        found = await self._access.check(who, f.project.entity, WRITE)
        await self._project_id(f)
        op_id = await self._db.fetchval(
            _INSERT,
            uuid.uuid4().hex,
            who.user_id,
            request_id,
            fingerprint,
            found.id,
            f.to_json(),
            delete_aliases,
        )
        if op_id is None:
            first = await self._db.fetchrow(_BY_REQUEST, who.user_id, request_id)
            assert first is not None  # the conflicting row; operations are never removed
            if bytes(first["fingerprint"]) != fingerprint:
                raise InvalidArgument(
                    f"request_id {request_id!r} was already used for a different DeleteArtifactVersions request; "
                    "use a new request_id for a new request",
                    field="request_id",
                    reason=ErrorReason.REQUEST_ID_REUSED,
                )
            op_id = first["id"]
        # A new operation, or one whose runner may have died: this server's
        # runner claims it as soon as nobody holds it.
        self._wake.set()
        return await self._get(str(op_id))

    async def get(self, who: Principal, name: str) -> Operation:
        """Progress, for whoever may read the operation's entity."""
        row = await self._db.fetchrow(_OPERATION, _operation_id(name))
        if row is None:
            raise NotFound(f"operation {name} not found", field="name")
        await self._access.check(who, row["entity"], READ)
        return _operation(row)

    async def _get(self, op_id: str) -> Operation:
        row = await self._db.fetchrow(_OPERATION, op_id)
        assert row is not None
        return _operation(row)

    # -- the runner ---------------------------------------------------------

    async def run(self) -> None:
        """Works through the operations nobody holds, one at a time, until cancelled.

        A server runs a few of these at once (server.BULK_DELETE_RUNNERS); each
        is its own lease owner.
        """
        me = uuid.uuid4().hex
        while True:
            self._wake.clear()
            try:
                op_id = await self._db.fetchval(_CLAIM, me, self._lease)
            except (OSError, asyncpg.PostgresError, DepotError, TimeoutError):
                log.exception("bulk delete: could not claim an operation; retrying")
                op_id = None
            if op_id is None:
                try:
                    await asyncio.wait_for(self._wake.wait(), self._poll_s)
                except TimeoutError:
                    pass
                continue
            try:
                await self._work(str(op_id), me)
            except Exception:  # noqa: BLE001 - one operation's bug must not stop the runner of all
                log.exception("bulk delete %s: unexpected error; it is retried once the lease expires", op_id)

    async def _work(self, op_id: str, me: str) -> None:
        """Runs a claimed operation to its end, or until its lease is lost.

        Stopped (cancelled), it gives the lease back so that the next runner
        continues at once; a failure it cannot fix marks the operation
        failed; any other error leaves the lease to expire and the operation
        to be retried from its cursor.
        """
        try:
            while await self._batch_once(op_id, me):
                pass
        except asyncio.CancelledError:
            await asyncio.shield(self._db.execute(_RELEASE, op_id, me))
            raise
        except DepotError as e:
            log.warning("bulk delete %s failed: %s", op_id, e.message)
            await self._db.execute(_FAIL, op_id, me, e.message)
        except (OSError, asyncpg.PostgresError, TimeoutError):
            log.exception("bulk delete %s: a batch failed; it is retried once the lease expires", op_id)

    async def _batch_once(self, op_id: str, me: str) -> bool:
        """One batch in one transaction; False once the operation is done or no longer held."""
        async with self._db.transaction() as conn:
            await conn.execute(f"SET LOCAL statement_timeout = {SCAN_TIMEOUT_MS}")
            op = await conn.fetchrow(_HELD, op_id, me)
            if op is None:
                return False
            f = BulkFilter.from_json(op["filter"])
            await self._still_allowed(conn, op["caller_id"], f.project.entity)
            pid = await conn.fetchval(_PROJECT_ID, f.project.entity, f.project.project)
            where = _Where(int(pid), f, op["create_time"])
            if op["matched"] is None:
                matched = await conn.fetchval(
                    "SELECT count(*)" + where.sql, *where.args, timeout=SCAN_TIMEOUT_MS / 1000
                )
                await conn.execute("UPDATE delete_operations SET matched = $2 WHERE id = $1", op_id, matched)
            coll, index = op["cursor_collection"], op["cursor_index"]
            if coll == 0:
                coll = await self._next_collection(conn, int(pid), f, 0)
                if coll is None:
                    return await self._finish(conn, op_id)
            batch = await conn.fetch(
                "SELECT v.id, v.index"
                + where.sql
                + f" AND v.collection_id = {where.arg(coll)} AND v.index > {where.arg(index)}"
                + f" ORDER BY v.index LIMIT {where.arg(self._batch)}",
                *where.args,
                timeout=SCAN_TIMEOUT_MS / 1000,
            )
            deleted = skipped_aliased = skipped_linked = 0
            sample: list[str] = []
            if batch:
                outcome = await delete_versions(
                    conn,
                    [r["id"] for r in batch],
                    delete_reason="user",
                    delete_aliases=op["delete_aliases"],
                    grace=self._grace,
                )
                deleted = len(outcome.deleted)
                skipped_aliased, skipped_linked = len(outcome.skipped_aliased), len(outcome.skipped_linked)
                sample = [t.name for t in outcome.deleted][: max(SAMPLE - len(op["sample"]), 0)]
                index = batch[-1]["index"]
            if len(batch) < self._batch:
                nxt = await self._next_collection(conn, int(pid), f, coll)
                coll, index = (nxt, -1) if nxt is not None else (coll, index)
                if nxt is None:
                    await self._advance(conn, op_id, coll, index, deleted, skipped_aliased, skipped_linked, sample)
                    return await self._finish(conn, op_id)
            await self._advance(conn, op_id, coll, index, deleted, skipped_aliased, skipped_linked, sample)
            return True

    async def _still_allowed(self, conn: Connection, caller_id: int, entity: str) -> None:
        """PERMISSION_DENIED (which fails the operation) unless the caller
        still holds WRITE on ``entity``: checked per batch, in its transaction."""
        row = await conn.fetchrow(_CALLER, caller_id)
        assert row is not None  # the operation's row goes with its caller's (ON DELETE CASCADE)
        who = Principal(row["id"], row["name"], row["superuser"])
        try:
            await self._access.check(who, entity, WRITE)
        except (PermissionDenied, NotFound) as e:
            raise PermissionDenied(
                f"stopped: {who.user} may no longer write to entity {entity!r}", field="entity"
            ) from e

    async def _next_collection(self, conn: Connection, pid: int, f: BulkFilter, after: int) -> int | None:
        found = await conn.fetchval(_NEXT_COLLECTION, pid, after, f.artifact or None, f.type)
        return int(found) if found is not None else None

    async def _advance(
        self,
        conn: Connection,
        op_id: str,
        coll: int,
        index: int,
        deleted: int,
        skipped_aliased: int,
        skipped_linked: int,
        sample: list[str],
    ) -> None:
        """Commits the batch's progress with the batch, and renews the lease."""
        await conn.execute(
            """
            UPDATE delete_operations SET cursor_collection = $2, cursor_index = $3, deleted = deleted + $4,
                skipped_aliased = skipped_aliased + $5, skipped_linked = skipped_linked + $6,
                sample = sample || $7::text[], update_time = now(), lease_until = now() + $8::interval
            WHERE id = $1
            """,
            op_id,
            coll,
            index,
            deleted,
            skipped_aliased,
            skipped_linked,
            sample,
            self._lease,
        )

    async def _finish(self, conn: Connection, op_id: str) -> bool:
        await conn.execute(
            "UPDATE delete_operations SET state = 'done', update_time = now(), lease_until = NULL WHERE id = $1",
            op_id,
        )
        return False


__all__ = ["BATCH", "DRY_RUN_COUNT_CAP", "LEASE", "BulkDeletes", "BulkFilter", "Operation"]
