"""A bulk delete's bounds: the runner re-checks its caller's role with
every batch, and a dry run's count is capped.

The call authorizes once, but the operation runs for minutes: a member
removed meanwhile must not keep deleting with the role they no longer hold.
A dry run answers on the request path, so it must not count for minutes.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

import asyncpg
import pytest

from depot.services.metadata import db
from depot.services.metadata.access import Access, Principal
from depot.services.metadata.bulk_delete import BulkDeletes, BulkFilter
from depot.services.metadata.projects import Projects

ENTITY = "team-q"
N = 60


async def _seed(conn: asyncpg.Connection) -> Principal:
    """A team with one collection of committed versions; returns a member of it."""
    uid = await conn.fetchval("INSERT INTO entities (name, kind) VALUES ('mia', 'user') RETURNING id")
    eid = await conn.fetchval("INSERT INTO entities (name, kind) VALUES ($1, 'team') RETURNING id", ENTITY)
    await conn.execute("INSERT INTO memberships (entity_id, user_id, role) VALUES ($1, $2, 'member')", eid, uid)
    pid = await conn.fetchval("INSERT INTO projects (entity_id, name) VALUES ($1, 'p') RETURNING id", eid)
    cid = await conn.fetchval(
        "INSERT INTO collections (project_id, name, type, next_index) VALUES ($1, 'a', 'model', $2) RETURNING id",
        pid,
        N,
    )
    await conn.execute(
        """
        INSERT INTO versions (uid, collection_id, index, state, digest, commit_time)
        SELECT gen_random_uuid(), $1, i, 'committed', md5(i::text), now() - interval '1 hour'
        FROM generate_series(0, $2 - 1) AS i
        """,
        cid,
        N,
    )
    return Principal(uid, "mia", False)


async def _until(pool: asyncpg.Pool, op: str, ok: Any) -> asyncpg.Record:
    deadline = time.monotonic() + 60
    while True:
        row = await pool.fetchrow("SELECT * FROM delete_operations WHERE id = $1", op.removeprefix("operations/"))
        assert row is not None
        if ok(row):
            return row
        assert time.monotonic() < deadline, dict(row)
        await asyncio.sleep(0.01)


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_a_member_removed_mid_operation_stops_it(database_url: str) -> None:
    async def main() -> None:
        pool = await db.create_pool(database_url, min_size=1, max_size=6)
        try:
            async with pool.acquire() as conn:
                mia = await _seed(conn)
            database = db.Database(pool)
            access = Access(database)
            runner = BulkDeletes(database, access, Projects(database), grace=timedelta(hours=1), batch=10)
            f = BulkFilter.parse(f"entities/{ENTITY}/projects/p")
            op = await runner.start(mia, f, delete_aliases=False, request_id="r", fingerprint=b"f")
            task = asyncio.create_task(runner.run())
            await _until(pool, op.name, lambda r: r["deleted"] >= 10)
            await _stop(task)
            stopped = await _until(pool, op.name, lambda r: r["lease_until"] is None)
            assert stopped["state"] == "running" and stopped["deleted"] < N
            # Removed from the team while the operation is half done.
            await pool.execute("DELETE FROM memberships WHERE user_id = $1", mia.user_id)
            # As RemoveMember does on its server (other replicas' caches
            # forget within access.AUTH_CACHE_S).
            access.forget_roles()
            task = asyncio.create_task(runner.run())
            failed = await _until(pool, op.name, lambda r: r["state"] != "running")
            await _stop(task)
            assert failed["state"] == "failed"
            assert failed["error"] == f"stopped: mia may no longer write to entity {ENTITY!r}"
            # Not one batch more than before the removal.
            assert failed["deleted"] == stopped["deleted"]
            live = await pool.fetchval("SELECT count(*) FROM versions WHERE state = 'committed'")
            assert live == N - stopped["deleted"]
        finally:
            await pool.close()

    asyncio.run(main())


def test_a_dry_run_stops_counting_at_its_cap(database_url: str) -> None:
    async def main() -> None:
        pool = await db.create_pool(database_url, min_size=1, max_size=3)
        try:
            async with pool.acquire() as conn:
                mia = await _seed(conn)
            database = db.Database(pool)
            bulk = BulkDeletes(database, Access(database), Projects(database), grace=timedelta(hours=1))
            f = BulkFilter.parse(f"entities/{ENTITY}/projects/p")
            capped = await bulk.dry_run(mia, f, cap=25)
            assert (capped.state, capped.matched) == ("dry_run", 26)
            assert capped.error == "more than 25 versions match: the dry run stopped counting there"
            assert len(capped.sample) == 20
            exact = await bulk.dry_run(mia, f, cap=N)
            assert (exact.matched, exact.error) == (N, "")
            assert await pool.fetchval("SELECT count(*) FROM versions WHERE state = 'committed'") == N
        finally:
            await pool.close()

    asyncio.run(main())
