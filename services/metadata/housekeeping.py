"""What the GC service does to the metadata database (public: services/gc uses it).

The GC shares metadata's database but none of its domain code: the
statements it runs against metadata's tables live here, beside the schema
they depend on, and the GC calls them through this module alone.

- Expiry: a version expires when its TTL (its own, or the team default it
  inherits) has run out since commit, unless it is linked into a registry.
  It becomes deleted (gone from reads), loses its aliases, and ``latest``
  falls back to the newest live version of its collection.
- Idempotency records older than ``idempotency.RETENTION`` are pruned.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from .db import Connection, uses_session_lock
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
# Expiry is a delete by the system: the same grace period and undelete as a
# user's delete (the aliases it held are kept for undelete). $2: the grace.
_EXPIRE = (
    "UPDATE versions x SET state = 'deleted', delete_time = now(), purge_time = now() + $2::interval,"
    " delete_reason = 'ttl', deleted_aliases = coalesce((SELECT array_agg(a.alias ORDER BY a.alias)"
    " FROM aliases a WHERE a.version_id = x.id AND a.alias <> 'latest'), '{}')"
    " WHERE x.id IN (SELECT v.id " + _EXPIRED + ") RETURNING x.id, x.collection_id"
)
_DROP_ALIASES = "DELETE FROM aliases WHERE version_id = ANY($1::bigint[])"
# `latest` falls back to the newest live version of each collection.
_LATEST_TO_NEWEST = """
    INSERT INTO aliases (collection_id, alias, version_id)
    SELECT DISTINCT ON (collection_id) collection_id, 'latest', id FROM versions
    WHERE collection_id = ANY($1::bigint[]) AND state = 'committed'
    ORDER BY collection_id, index DESC
    ON CONFLICT (collection_id, alias) DO UPDATE SET version_id = EXCLUDED.version_id
"""
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


async def expire(conn: Connection, entity: str, timeout: float, grace: timedelta = DEFAULT_GRACE) -> int:
    """Expires the versions past their TTL; the caller holds a transaction. Returns how many.

    They stay restorable for ``grace`` (their purge_time).
    """
    expired = await conn.fetch(_EXPIRE, entity, grace, timeout=timeout)
    ids = [r["id"] for r in expired]
    await conn.execute(_DROP_ALIASES, ids)
    await conn.execute(_LATEST_TO_NEWEST, list({r["collection_id"] for r in expired}), timeout=timeout)
    return len(ids)


async def prune_idempotency(conn: Connection, timeout: float) -> None:
    """Drops idempotency records past their retention window."""
    await conn.execute(_PRUNE_IDEMPOTENCY, RETENTION, timeout=timeout)
