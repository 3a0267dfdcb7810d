"""TTL expiry judges "no registry link" again after it locked the rows.

The statement that picks and locks a batch of expired versions sees the
links of the snapshot it started with; a link committed after that snapshot
but before the row lock is invisible to it (FOR UPDATE re-checks the locked
row, never a NOT EXISTS over another table). The expiring statement runs in
a snapshot taken after the locks and must skip such a version. The window
cannot be hit on purpose from outside a statement, so the test hands expiry
what a lock statement with a stale snapshot answers: its real answer plus a
version linked meanwhile.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from depot.services.metadata import db, housekeeping


async def _seed(conn: asyncpg.Connection) -> tuple[list[int], int]:
    """Three versions past a 1 s TTL (v2 `latest`, v1 linked into a registry); their ids and v1's."""
    eid = await conn.fetchval("INSERT INTO entities (name, kind) VALUES ('team-x', 'team') RETURNING id")
    org = await conn.fetchval("INSERT INTO entities (name, kind) VALUES ('org-x', 'org') RETURNING id")
    pid = await conn.fetchval("INSERT INTO projects (entity_id, name) VALUES ($1, 'p') RETURNING id", eid)
    cid = await conn.fetchval(
        "INSERT INTO collections (project_id, name, type, next_index) VALUES ($1, 'c', 'model', 3) RETURNING id", pid
    )
    ids = [
        await conn.fetchval(
            "INSERT INTO versions (uid, collection_id, index, state, commit_time, ttl)"
            " VALUES (gen_random_uuid(), $1, $2, 'committed', now() - interval '1 hour', interval '1 second')"
            " RETURNING id",
            cid,
            i,
        )
        for i in range(3)
    ]
    await conn.execute("INSERT INTO aliases (collection_id, alias, version_id) VALUES ($1, 'latest', $2)", cid, ids[2])
    reg = await conn.fetchval("INSERT INTO registries (org_id, name) VALUES ($1, 'r') RETURNING id", org)
    rc = await conn.fetchval(
        "INSERT INTO registry_collections (registry_id, name, type) VALUES ($1, 'm', 'model') RETURNING id", reg
    )
    await conn.execute("INSERT INTO links (collection_id, version_id, index) VALUES ($1, $2, 0)", rc, ids[1])
    return ids, ids[1]


class _StaleLock:
    """The connection, with the batch's lock statement answering as if its
    snapshot predated the link of ``linked``."""

    def __init__(self, conn: Any, linked: int) -> None:
        self._conn = conn
        self._linked = linked
        self.locked: list[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    async def fetch(self, query: str, *args: Any, **kw: Any) -> list[Any]:
        rows = await self._conn.fetch(query, *args, **kw)
        if not self.locked and "FOR UPDATE OF v SKIP LOCKED" in query:
            locked = sorted([r["id"] for r in rows] + [self._linked])
            self.locked = locked
            return [{"id": i} for i in locked]
        return list(rows)


def test_a_version_linked_before_the_lock_does_not_expire(database_url: str) -> None:
    async def main() -> None:
        pool = await db.create_pool(database_url, min_size=1, max_size=2)
        try:
            async with pool.acquire() as conn:
                ids, linked = await _seed(conn)
                stale = _StaleLock(conn, linked)
                async with conn.transaction():
                    batch = await housekeeping.expire(stale, "", 60.0)  # type: ignore[arg-type]
                assert stale.locked == ids
                # Two expired; the linked one was looked at (the cursor is past it) and kept.
                assert (batch.count, batch.after[1]) == (2, max(ids))
                states = {r["id"]: r["state"] for r in await conn.fetch("SELECT id, state FROM versions")}
                assert states == {ids[0]: "deleted", linked: "committed", ids[2]: "deleted"}
                # `latest` fell back to the newest live version.
                latest = await conn.fetchval("SELECT version_id FROM aliases WHERE alias = 'latest'")
                assert latest == linked
                # With nothing live left, `latest` goes.
                await conn.execute("DELETE FROM links")
                async with conn.transaction():
                    again = await housekeeping.expire(conn, "", 60.0)
                assert again.count == 1
                assert await conn.fetchval("SELECT count(*) FROM aliases") == 0
        finally:
            await pool.close()

    asyncio.run(main())
