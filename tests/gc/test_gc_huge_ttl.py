"""A stored TTL beyond any date does not stop GC (issue 8, round 2, item 2).

Releases before TTLs were bounded accepted intervals like '999999999 days';
``commit_time + ttl`` then overflowed inside PostgreSQL and every GC pass
failed, so nothing expired for anyone. Migration 0004 clamps such rows and
bounds the columns; the pass clamps too, for a row that slips past (written
here with the constraints dropped).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import asyncpg
import pytest

from depot.services.gc.collector import Collector
from depot.services.metadata import db

HUGE = "999999999 days"
MAX_TTL = timedelta(days=36525)


async def _world(conn: asyncpg.Connection, default_ttl: str | None) -> dict[str, int]:
    """Team `t` (its default TTL given), collection `ds`, and one version per case
    (own TTL or inherited, commit time); returns version ids by case."""
    team = await conn.fetchval(
        "INSERT INTO entities (name, kind, default_ttl) VALUES ('t', 'team', $1::text::interval) RETURNING id",
        default_ttl,
    )
    project = await conn.fetchval("INSERT INTO projects (entity_id, name) VALUES ($1, 'p') RETURNING id", team)
    coll = await conn.fetchval(
        "INSERT INTO collections (project_id, name, type) VALUES ($1, 'ds', 'dataset') RETURNING id", project
    )
    cases = {
        # case: (own ttl, inherits the team default, committed this long ago)
        "huge": (HUGE, False, "10 years"),
        "huge_inherited": (None, True, "10 years"),
        "huge_negative": ("-" + HUGE, False, "1 hour"),
        "run_out": ("1 second", False, "1 hour"),
        "forever": (None, False, "10 years"),
        "not_yet": ("30 days", False, "1 hour"),
    }
    ids = {}
    for i, (case, (ttl, inherit, age)) in enumerate(cases.items()):
        ids[case] = await conn.fetchval(
            """
            INSERT INTO versions (uid, collection_id, index, state, digest, manifest_id,
                                  ttl, ttl_inherit, commit_time)
            VALUES ($1, $2, $3, 'committed', $4, $4, $5::text::interval, $6, now() - $7::text::interval)
            RETURNING id
            """,
            uuid.uuid4(),
            coll,
            i,
            f"d{i}",
            ttl,
            inherit,
            age,
        )
    await conn.execute("UPDATE collections SET next_index = $2 WHERE id = $1", coll, len(cases))
    return ids


def test_gc_expires_others_despite_huge_ttls(database_url: str) -> None:
    async def scenario() -> tuple[int, int, set[str]]:
        conn = await asyncpg.connect(database_url)
        try:
            # As a database written before migration 0004 bounded the columns.
            await conn.execute("ALTER TABLE versions DROP CONSTRAINT versions_ttl_range")
            await conn.execute("ALTER TABLE entities DROP CONSTRAINT entities_default_ttl_range")
            ids = await _world(conn, HUGE)
        finally:
            await conn.close()
        pool = await db.create_pool(database_url, min_size=1, max_size=2)
        try:
            dry = await Collector(pool).run("", force=False)
            done = await Collector(pool).run("", force=True)
            rows = await pool.fetch("SELECT id FROM versions WHERE state = 'deleted'")
        finally:
            await pool.close()
        by_id = {v: k for k, v in ids.items()}
        return dry.versions_expired, done.versions_expired, {by_id[r["id"]] for r in rows}

    dry, expired, deleted = asyncio.run(scenario())
    assert (dry, expired) == (2, 2)
    assert deleted == {"run_out", "huge_negative"}


def _fresh_database(postgres, name: str) -> str:  # type: ignore[no-untyped-def]
    async def create() -> None:
        conn = await asyncpg.connect(postgres.admin_dsn)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(create())
    return str(postgres.dsn_for(name))


def test_migration_0004_clamps_stored_ttls_and_bounds_them(postgres) -> None:  # type: ignore[no-untyped-def]
    name = f"ttl_bounds_{uuid.uuid4().hex[:8]}"
    dsn = _fresh_database(postgres, name)

    async def scenario() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            # The schema as it was before 0004, with what the API used to accept.
            async with conn.transaction():
                for version, _, sql in db.migrations():
                    if version < 4:
                        await conn.execute(sql)
                        await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)
            ids = await _world(conn, HUGE)
            await conn.execute("INSERT INTO entities (name, kind, default_ttl) VALUES ('u', 'team', '30 days')")
        finally:
            await conn.close()
        # Later migrations (0005_deletion.sql, ...) follow 0004; this test is about 0004.
        assert (await db.migrate(dsn))[0] == "0004_ttl_bounds.sql"
        conn = await asyncpg.connect(dsn)
        try:
            ttl = {r["id"]: r["ttl"] for r in await conn.fetch("SELECT id, ttl FROM versions")}
            assert ttl[ids["huge"]] == MAX_TTL
            assert ttl[ids["huge_negative"]] == timedelta(seconds=1)
            # Rows within the bounds, and forever, are left as they were.
            assert ttl[ids["run_out"]] == timedelta(seconds=1)
            assert ttl[ids["not_yet"]] == timedelta(days=30)
            assert ttl[ids["forever"]] is None and ttl[ids["huge_inherited"]] is None
            defaults = dict(await conn.fetch("SELECT name, default_ttl FROM entities"))
            assert defaults == {"t": MAX_TTL, "u": timedelta(days=30)}
            # And no such value can be stored again, whatever writes it.
            with pytest.raises(asyncpg.CheckViolationError):
                await conn.execute("UPDATE versions SET ttl = $1::text::interval WHERE id = $2", HUGE, ids["not_yet"])
            with pytest.raises(asyncpg.CheckViolationError):
                await conn.execute("UPDATE entities SET default_ttl = $1::text::interval WHERE name = 'u'", HUGE)
            with pytest.raises(asyncpg.CheckViolationError):
                await conn.execute("UPDATE versions SET ttl = '0 seconds' WHERE id = $1", ids["not_yet"])
        finally:
            await conn.close()

    try:
        asyncio.run(scenario())
    finally:
        asyncio.run(_drop(postgres, name))


async def _drop(postgres, name: str) -> None:  # type: ignore[no-untyped-def]
    conn = await asyncpg.connect(postgres.admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE "{name}"')
    finally:
        await conn.close()
