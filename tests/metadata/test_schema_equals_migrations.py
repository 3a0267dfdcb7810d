"""schema.sql is the truth: the migrations must build exactly the same database."""

from __future__ import annotations

import asyncio

import asyncpg

from depot.services.metadata import db

_COLUMNS = """
    SELECT table_name, column_name, data_type, is_nullable, column_default
    FROM information_schema.columns WHERE table_schema = 'public'
    ORDER BY table_name, column_name
"""
_CONSTRAINTS = """
    SELECT conrelid::regclass::text AS tbl, pg_get_constraintdef(oid) AS def
    FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2
"""
_INDEXES = "SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY indexdef"


async def _shape(dsn: str) -> tuple[list[tuple], ...]:
    conn = await asyncpg.connect(dsn)
    try:
        out = []
        for q in (_COLUMNS, _CONSTRAINTS, _INDEXES):
            out.append([tuple(r) for r in await conn.fetch(q)])
        return tuple(out)
    finally:
        await conn.close()


def test_schema_sql_equals_migrations(postgres) -> None:
    from_migrations = postgres.new_database()  # cloned from the migrated template

    async def build_from_schema() -> str:
        name = "schema_only"
        conn = await asyncpg.connect(postgres.admin_dsn)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        dsn = postgres.dsn_for(name)
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(db.schema_sql())
        finally:
            await conn.close()
        return dsn

    from_schema = asyncio.run(build_from_schema())
    a, b = asyncio.run(_shape(from_migrations)), asyncio.run(_shape(from_schema))
    assert a[0] == b[0], "columns differ"
    assert a[1] == b[1], "constraints differ"
    assert a[2] == b[2], "indexes differ"
    assert len(a[0]) > 20


def test_migrate_is_idempotent(database_url: str) -> None:
    assert asyncio.run(db.migrate(database_url)) == []
