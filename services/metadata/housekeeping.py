"""What the GC service does to the metadata database (public: services/gc uses it).

The GC shares metadata's database but none of its domain code: the
statements it runs against metadata's tables live here, beside the schema
they depend on, and the GC calls them through this module alone.

- Expiry: a version expires when its TTL (its own, or the team default it
  inherits) has run out since commit, unless it is linked into a registry.
  It becomes deleted (gone from reads), loses its aliases, and ``latest``
  falls back to the newest live version of its collection.
- Purge: a deleted version past its purge_time is removed for good, and so
  is a pending version abandoned longer than the grace period (a client
  that died mid-log). Its row goes, and with it (ON DELETE CASCADE) its
  aliases, its consumers' edges (run_inputs) and any link; its producer edge
  is a column of the row. What it referenced in the blob store (manifest,
  blobs) is then garbage unless another version references it: the GC's
  sweep decides that, after the purge.
- Idempotency records older than ``idempotency.RETENTION`` are pruned.

Expiry and purges run in batches of ``BATCH`` rows, one transaction each, so a
backlog of millions neither holds row locks for long nor leaves one huge
transaction to roll back: a pass that stops midway keeps what it purged, and
the next one continues.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from asyncpg import Record

from .db import Connection, uses_session_lock
from .deletion import LATEST_TO_NEWEST
from .idempotency import RETENTION

# How long a deleted version stays restorable before the GC purges it, when
# the server sets nothing else (DEPOT_GRACE_PERIOD_S).
DEFAULT_GRACE = timedelta(days=7)

# The TTL is clamped to 0 .. 100 years (validate.MAX_TTL) before it is added:
# migration 0004 bounds stored TTLs, but one row outside them (written by
# hand, or with the constraint dropped) must not make the addition overflow
# ("timestamp out of range") and so stop every pass, expiring nothing for
# anyone. Past 100 years the clamp changes no answer for a version committed
# in this century. $1: an entity name, or '' for all.
_EXPIRED = """
    FROM versions v
    JOIN collections c ON c.id = v.collection_id
    JOIN projects p ON p.id = c.project_id
    JOIN entities e ON e.id = p.entity_id
    -- The version's own TTL, or its entity's default when it inherits.
    CROSS JOIN LATERAL (SELECT CASE WHEN v.ttl_inherit THEN e.default_ttl ELSE v.ttl END AS ttl) t
    WHERE v.state = 'committed'
      -- NULL is forever; said here because LEAST and GREATEST skip NULLs.
      AND t.ttl IS NOT NULL
      AND v.commit_time + LEAST(GREATEST(t.ttl, interval '0'), interval '36525 days') < now()
      -- Versions linked into a registry never expire.
      AND NOT EXISTS (SELECT 1 FROM links l WHERE l.version_id = v.id)
      AND ($1::text = '' OR e.name = $1)
"""
_EXPIRED_SAMPLE = (
    "SELECT 'entities/' || e.name || '/projects/' || p.name || '/artifacts/' || c.name"
    " || '/versions/v' || v.index AS name " + _EXPIRED + " ORDER BY v.id LIMIT $2"
)
_EXPIRED_COUNT = "SELECT count(*) " + _EXPIRED
# The expired versions of one batch, locked: $2 how many, after id $3. A
# writer holding one (a link or alias being added takes FOR SHARE) makes it
# skipped, left for the next pass.
_LOCK_EXPIRED = "SELECT v.id " + _EXPIRED + " AND v.id > $3 ORDER BY v.id LIMIT $2 FOR UPDATE OF v SKIP LOCKED"
# Expiry is a delete by the system: the same grace period and undelete as a
# user's delete (the aliases it held are kept for undelete). $2: the grace,
# $3: the ids locked by _LOCK_EXPIRED. The conditions are evaluated again
# here, in this statement's own snapshot taken after the locks: the lock
# statement judged "no registry link" in a snapshot taken before them, and
# FOR UPDATE re-checks only the locked row, never the NOT EXISTS, so a link
# committed in between would let a linked version expire. Once the rows are
# locked no new link can come (it must share-lock the row first).
_EXPIRE = (
    "UPDATE versions x SET state = 'deleted', delete_time = now(), purge_time = now() + $2::interval,"
    " delete_reason = 'ttl', deleted_aliases = coalesce((SELECT array_agg(a.alias ORDER BY a.alias)"
    " FROM aliases a WHERE a.version_id = x.id AND a.alias <> 'latest'), '{}')"
    " WHERE x.id = ANY(ARRAY(SELECT v.id " + _EXPIRED + " AND v.id = ANY($3::bigint[])))"
    " RETURNING x.id, x.collection_id"
)
_DROP_ALIASES = "DELETE FROM aliases WHERE version_id = ANY($1::bigint[])"
# The versions a purge removes. A deleted version past its purge_time; never
# one linked into a registry (deletion refuses those, and so does expiry, but
# a row that is linked must not lose its link to a purge). Row locks are
# taken with SKIP LOCKED: a version an undelete holds right now is left for
# the next pass, and the recheck under the lock (READ COMMITTED re-evaluates
# the WHERE on the locked row) skips one the undelete restored.
# $1: entity or ''.
_PURGEABLE = """
    FROM versions v
    JOIN collections c ON c.id = v.collection_id
    JOIN projects p ON p.id = c.project_id
    JOIN entities e ON e.id = p.entity_id
    WHERE v.state = 'deleted' AND v.purge_time < now()
      AND NOT EXISTS (SELECT 1 FROM links l WHERE l.version_id = v.id)
      AND ($1::text = '' OR e.name = $1)
"""
# Pending versions older than the grace period: uploads whose client is
# gone. $2: the grace.
_ABANDONED = """
    FROM versions v
    JOIN collections c ON c.id = v.collection_id
    JOIN projects p ON p.id = c.project_id
    JOIN entities e ON e.id = p.entity_id
    WHERE v.state = 'pending' AND v.create_time < now() - $2::interval
      AND ($1::text = '' OR e.name = $1)
"""
# A version's name: vN once committed, its uid while pending (it has no index).
_NAME = (
    "'entities/' || e.name || '/projects/' || p.name || '/artifacts/' || c.name"
    " || '/versions/' || coalesce('v' || v.index, v.uid::text) AS name "
)
_PURGE_SAMPLE = "SELECT " + _NAME + _PURGEABLE + " ORDER BY v.purge_time, v.id LIMIT $2"
_PURGE_COUNT = "SELECT count(*) " + _PURGEABLE
_PURGE_BATCH = (
    "DELETE FROM versions x WHERE x.id = ANY(ARRAY(SELECT v.id " + _PURGEABLE + " AND (v.purge_time, v.id) > ($3, $4)"
    " ORDER BY v.purge_time, v.id LIMIT $2 FOR UPDATE OF v SKIP LOCKED)) RETURNING x.id, x.purge_time AS at"
)
_ABANDONED_SAMPLE = "SELECT " + _NAME + _ABANDONED + " ORDER BY v.create_time, v.id LIMIT $3"
_ABANDONED_COUNT = "SELECT count(*) " + _ABANDONED
# A pending version a commit holds right now is skipped (SKIP LOCKED), and
# the recheck under the lock skips one that committed meanwhile.
_ABANDONED_BATCH = (
    "DELETE FROM versions x WHERE x.id = ANY(ARRAY(SELECT v.id " + _ABANDONED + " AND (v.create_time, v.id) > ($4, $5)"
    " ORDER BY v.create_time, v.id LIMIT $3 FOR UPDATE OF v SKIP LOCKED)) RETURNING x.id, x.create_time AS at"
)
# Rows per expiry or purge transaction: a batch is a few ms of row updates or
# deletes, index updates and cascades, small enough that an undelete or a
# commit waiting on one of its rows waits little. Each batch starts after the
# last row of the one before (a keyset cursor), so a pass reads the backlog
# once instead of rescanning what it already did (or skipped) per batch. The
# batch's ids go in as an array (= ANY(ARRAY(...))), so the rows are fetched
# by primary key: with IN (subquery) PostgreSQL hash-joined the batch
# against a sequential scan of all versions, per batch (bench/gc_pass.py).
BATCH = 1000
_PRUNE_IDEMPOTENCY = "DELETE FROM idempotency WHERE create_time < now() - $1::interval"


@asynccontextmanager
async def session_lock(conn: Connection, key: int) -> AsyncIterator[bool]:
    """Tries a session advisory lock on a pooled connection; yields whether it was taken.

    Released on exit, and by the pool when the connection goes back to it
    (db.uses_session_lock) should the release itself fail.
    """
    uses_session_lock(conn)
    taken = bool(await conn.fetchval("SELECT pg_try_advisory_lock($1)", key))
    try:
        yield taken
    finally:
        if taken:
            await conn.execute("SELECT pg_advisory_unlock($1)", key)


async def expired_sample(conn: Connection, entity: str, limit: int) -> list[str]:
    """Names of up to ``limit`` expired versions (of ``entity``, or all with '')."""
    return [r["name"] for r in await conn.fetch(_EXPIRED_SAMPLE, entity, limit)]


async def count_expired(conn: Connection, entity: str) -> int:
    return int(await conn.fetchval(_EXPIRED_COUNT, entity))


# Where a batch starts: after this (time, id) in the scan's order (expiry: the id alone).
Cursor = tuple[datetime, int]
START: Cursor = (datetime.min.replace(tzinfo=UTC), 0)


@dataclass(frozen=True)
class Batch:
    """What one batch did: how many rows, and where the next batch starts
    (fewer than ``BATCH`` rows: the backlog is done for this pass; rows a
    writer held locked are left for the next pass)."""

    count: int
    after: Cursor


async def expire(
    conn: Connection, entity: str, timeout: float, grace: timedelta = DEFAULT_GRACE, after: Cursor = START
) -> Batch:
    """Expires up to ``BATCH`` versions past their TTL; the caller holds a transaction.

    They stay restorable for ``grace`` (their purge_time).
    """
    locked = [r["id"] for r in await conn.fetch(_LOCK_EXPIRED, entity, BATCH, after[1], timeout=timeout)]
    expired = await conn.fetch(_EXPIRE, entity, grace, locked, timeout=timeout) if locked else []
    ids = [r["id"] for r in expired]
    await conn.execute(_DROP_ALIASES, ids)
    # `latest` goes to the newest live version of each collection touched.
    await conn.execute(LATEST_TO_NEWEST, list({r["collection_id"] for r in expired}), timeout=timeout)
    # Past every row looked at, the ones found linked under the lock included.
    return Batch(len(ids), (after[0], max(locked, default=after[1])))


async def purge_sample(conn: Connection, entity: str, limit: int) -> list[str]:
    """Names of up to ``limit`` deleted versions a purge would remove now."""
    return [r["name"] for r in await conn.fetch(_PURGE_SAMPLE, entity, limit)]


async def count_purgeable(conn: Connection, entity: str) -> int:
    return int(await conn.fetchval(_PURGE_COUNT, entity))


async def purge_batch(conn: Connection, entity: str, timeout: float, after: Cursor = START) -> Batch:
    """Removes up to ``BATCH`` deleted versions past their purge_time; the caller
    holds a transaction (one an undelete holds now is left for the next pass)."""
    return _batch(await conn.fetch(_PURGE_BATCH, entity, BATCH, *after, timeout=timeout), after)


async def abandoned_sample(conn: Connection, entity: str, grace: timedelta, limit: int) -> list[str]:
    """Names of up to ``limit`` pending versions older than ``grace``."""
    return [r["name"] for r in await conn.fetch(_ABANDONED_SAMPLE, entity, grace, limit)]


async def count_abandoned(conn: Connection, entity: str, grace: timedelta) -> int:
    return int(await conn.fetchval(_ABANDONED_COUNT, entity, grace))


async def purge_abandoned_batch(
    conn: Connection, entity: str, grace: timedelta, timeout: float, after: Cursor = START
) -> Batch:
    """Removes up to ``BATCH`` pending versions older than ``grace``; the caller
    holds a transaction."""
    return _batch(await conn.fetch(_ABANDONED_BATCH, entity, grace, BATCH, *after, timeout=timeout), after)


def _batch(rows: list[Record], after: Cursor) -> Batch:
    return Batch(len(rows), max(((r["at"], r["id"]) for r in rows), default=after))


async def prune_idempotency(conn: Connection, timeout: float) -> None:
    """Drops idempotency records past their retention window."""
    await conn.execute(_PRUNE_IDEMPOTENCY, RETENTION, timeout=timeout)
