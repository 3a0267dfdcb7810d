"""One garbage-collection pass (domain; no grpc).

Runs under a PostgreSQL advisory lock so that only one replica collects at
a time; the others report ``ran=False``. With ``force=False`` nothing is
changed: the pass reports what it would do.

Today a pass expires versions whose TTL has run out (they become deleted and
disappear from reads) and prunes idempotency records past their window.
Purging manifests and sweeping unreferenced blobs is not implemented yet.
The statements run against metadata's tables are metadata's
(``depot.services.metadata.housekeeping``); this module decides when.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from depot.services.metadata.public import housekeeping

_LEADER_LOCK = 0x6465706F7467  # "depotg"
SAMPLE = 20
# A GC statement may take this long (the request path is bounded far tighter).
GC_STATEMENT_TIMEOUT_S = 600.0
# A pass over a large backlog may run longer than the per-request bounds
# (db.QUERY_TIMEOUT_S, asyncpg's command timeout): only the GC's own
# transactions get GC_STATEMENT_TIMEOUT_S.
_GC_STATEMENT_TIMEOUT = f"SET LOCAL statement_timeout = {int(GC_STATEMENT_TIMEOUT_S * 1000)}"


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
        async with self._pool.acquire() as conn, housekeeping.session_lock(conn, _LEADER_LOCK) as leader:
            if not leader:
                return Report(ran=False, dry_run=not force)
            return await self._pass(conn, entity, force)

    async def _pass(self, conn: PoolConnectionProxy, entity: str, force: bool) -> Report:
        sample = await housekeeping.expired_sample(conn, entity, SAMPLE)
        report = Report(ran=True, dry_run=not force, sample=sample)
        if not force:
            report.versions_expired = await housekeeping.count_expired(conn, entity)
            return report
        async with conn.transaction():
            await conn.execute(_GC_STATEMENT_TIMEOUT)
            expired = await housekeeping.expire(conn, entity, GC_STATEMENT_TIMEOUT_S)
        # Apart from the expiry, so a failed expiry pass does not also keep
        # the idempotency table growing.
        async with conn.transaction():
            await conn.execute(_GC_STATEMENT_TIMEOUT)
            await housekeeping.prune_idempotency(conn, GC_STATEMENT_TIMEOUT_S)
        report.versions_expired = expired
        return report
