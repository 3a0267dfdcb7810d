"""Database: one request's queries share its transaction; on_commit waits for the commit."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from depot.services.metadata.db import Database


def test_nested_transactions_join_and_on_commit_runs_after_commit_only(database_url: str) -> None:
    async def scenario() -> tuple[object, ...]:
        pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
        db = Database(pool)
        seen: list[str] = []
        try:
            await db.execute("CREATE TABLE t (x int)")
            async with db.transaction() as outer:
                async with db.transaction() as inner:
                    same = inner is outer
                await db.execute("INSERT INTO t VALUES (1)")  # on the transaction's connection
                db.on_commit(lambda: seen.append("committed"))
                before = list(seen)
            with pytest.raises(RuntimeError):
                async with db.transaction():
                    await db.execute("INSERT INTO t VALUES (2)")
                    db.on_commit(lambda: seen.append("rolled back"))
                    raise RuntimeError
            db.on_commit(lambda: seen.append("no transaction"))
            rows = [r["x"] for r in await db.fetch("SELECT x FROM t ORDER BY x")]
            return same, before, seen, rows
        finally:
            await pool.close()

    assert asyncio.run(scenario()) == (True, [], ["committed", "no transaction"], [1])


def test_access_answers_from_a_rolled_back_transaction_are_not_cached(database_url: str) -> None:
    from depot.services.metadata.access import Access, Principal

    async def scenario() -> tuple[object, object]:
        pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
        db = Database(pool)
        access = Access(db)
        root = Principal(user_id=0, user="root", superuser=True)
        try:
            with pytest.raises(RuntimeError):
                async with db.transaction():
                    await db.execute("INSERT INTO entities (name, kind) VALUES ('ghost', 'team')")
                    inside = await access.lookup(root, "ghost")
                    raise RuntimeError("rolled back")
            return inside is not None, await access.lookup(root, "ghost")
        finally:
            await pool.close()

    # Seen inside its transaction; gone (not served from a cache) after the rollback.
    assert asyncio.run(scenario()) == (True, None)
