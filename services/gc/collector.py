"""One garbage-collection pass (domain; no grpc).

Runs under a PostgreSQL advisory lock so that only one replica collects at
a time; the others report ``ran=False``. With ``force=False`` nothing is
changed: the pass reports what it would do.

Today a pass expires versions whose TTL has run out (they become deleted and
disappear from reads) and prunes idempotency records past their window.
Purging manifests and sweeping unreferenced blobs is not implemented yet.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import asyncpg

from depot.services.metadata.db import uses_session_lock
from depot.services.metadata.idempotency import RETENTION

_LEADER_LOCK = 0x6465706F7467  # "depotg"
SAMPLE = 20
# A GC statement may take this long (the request path is bounded far tighter).
GC_STATEMENT_TIMEOUT_S = 600.0

# A version expires when its TTL (its own, or the team default it inherits)
# has run out since commit, unless it is linked into a registry.
#
# The TTL is clamped to 0 .. 100 years (validate.MAX_TTL) before it is added:
# migration 0004 bounds stored TTLs, but one row outside them (written by
# hand, or with the constraint dropped) must not make the addition overflow
# ("timestamp out of range") and so stop every pass, expiring nothing for
# anyone. Past 100 years the clamp changes no answer for a version committed
# in this century.
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


@dataclass
class Report:
    ran: bool
    dry_run: bool
    versions_expired: int = 0
    sample: list[str] = field(default_factory=list)


class Collector:
    def __init__(self, pool: asyncpg.Pool):
        self._pool = pool

    async def run(self, entity: str, *, force: bool) -> Report:
        async with self._pool.acquire() as conn:
            uses_session_lock(conn)
            if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", _LEADER_LOCK):
                return Report(ran=False, dry_run=not force)
            try:
                return await self._pass(conn, entity, force)
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", _LEADER_LOCK)

    async def _pass(self, conn: asyncpg.Connection, entity: str, force: bool) -> Report:
        rows = await conn.fetch(
            "SELECT 'entities/' || e.name || '/projects/' || p.name || '/artifacts/' || c.name"
            " || '/versions/v' || v.index AS name " + _EXPIRED + " ORDER BY v.id LIMIT $2",
            entity,
            SAMPLE,
        )
        report = Report(ran=True, dry_run=not force, sample=[r["name"] for r in rows])
        if not force:
            report.versions_expired = await conn.fetchval("SELECT count(*) " + _EXPIRED, entity)
            return report
        async with conn.transaction():
            # A pass over a large backlog may run longer than the per-request
            # bounds (db.QUERY_TIMEOUT_S, asyncpg's command timeout): only
            # this transaction gets GC_STATEMENT_TIMEOUT_S.
            await conn.execute(f"SET LOCAL statement_timeout = {int(GC_STATEMENT_TIMEOUT_S * 1000)}")
            expired = await conn.fetch(
                "UPDATE versions SET state = 'deleted', delete_time = now()"
                " WHERE id IN (SELECT v.id " + _EXPIRED + ") RETURNING id, collection_id",
                entity,
                timeout=GC_STATEMENT_TIMEOUT_S,
            )
            ids = [r["id"] for r in expired]
            # A deleted version keeps no aliases; `latest` moves to the newest live one.
            await conn.execute("DELETE FROM aliases WHERE version_id = ANY($1::bigint[])", ids)
            await conn.execute(
                """
                INSERT INTO aliases (collection_id, alias, version_id)
                SELECT DISTINCT ON (collection_id) collection_id, 'latest', id FROM versions
                WHERE collection_id = ANY($1::bigint[]) AND state = 'committed'
                ORDER BY collection_id, index DESC
                ON CONFLICT (collection_id, alias) DO UPDATE SET version_id = EXCLUDED.version_id
                """,
                list({r["collection_id"] for r in expired}),
                timeout=GC_STATEMENT_TIMEOUT_S,
            )
        # Apart from the expiry, so a failed expiry pass does not also keep
        # the idempotency table growing.
        async with conn.transaction():
            await conn.execute(f"SET LOCAL statement_timeout = {int(GC_STATEMENT_TIMEOUT_S * 1000)}")
            await conn.execute(
                "DELETE FROM idempotency WHERE create_time < now() - $1::interval",
                RETENTION,
                timeout=GC_STATEMENT_TIMEOUT_S,
            )
        report.versions_expired = len(ids)
        return report
