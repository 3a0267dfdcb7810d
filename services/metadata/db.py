"""PostgreSQL pool and schema migrations.

Migrations are plain SQL files ``migrations/NNNN_name.sql`` applied in order,
each in its own transaction, recorded in ``schema_migrations``. An advisory
lock makes concurrent migrators (several pods starting) wait for each other.
"""

from __future__ import annotations

import json
import re
import weakref
from importlib import resources
from typing import Any

import asyncpg

_MIGRATION = re.compile(r"(\d{4})_[a-z0-9_]+\.sql")
_MIGRATE_LOCK = 0x6465706F74  # "depot"


def migrations() -> list[tuple[int, str, str]]:
    """(version, filename, sql) for every migration, in order."""
    folder = resources.files("depot.services.metadata") / "migrations"
    out = []
    for item in folder.iterdir():
        m = _MIGRATION.fullmatch(item.name)
        if m:
            out.append((int(m.group(1)), item.name, item.read_text()))
    return sorted(out)


def schema_sql() -> str:
    return (resources.files("depot.services.metadata") / "schema.sql").read_text()


async def migrate(dsn: str) -> list[str]:
    """Applies pending migrations; returns the names of those applied."""
    conn = await asyncpg.connect(dsn)
    applied: list[str] = []
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATE_LOCK)
        exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
        done = set()
        if exists:
            done = {r[0] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for version, name, sql in migrations():
            if version in done:
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)
            applied.append(name)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATE_LOCK)
        await conn.close()
    return applied


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


# Pooled connections that took a session-level advisory lock (see uses_session_lock).
_SESSION_LOCKED: weakref.WeakSet[asyncpg.Connection] = weakref.WeakSet()


def uses_session_lock(conn: Any) -> None:
    """Marks a pooled connection whose session locks must be dropped when it is released."""
    _SESSION_LOCKED.add(getattr(conn, "_con", conn))


async def _reset_connection(conn: asyncpg.Connection) -> None:
    # Depot keeps no session state on pooled connections (no SET, LISTEN or
    # temp tables), so asyncpg's default reset query — one more round trip on
    # every release — is skipped; asyncpg still rolls back an open
    # transaction before calling this. Session advisory locks are the
    # exception, released here for the connections that took one.
    if conn in _SESSION_LOCKED:
        _SESSION_LOCKED.discard(conn)
        await conn.execute("SELECT pg_advisory_unlock_all()")


async def create_pool(dsn: str, **kwargs: Any) -> asyncpg.Pool:
    kwargs.setdefault("min_size", 2)
    kwargs.setdefault("max_size", 20)
    pool = await asyncpg.create_pool(dsn, init=_init_connection, reset=_reset_connection, **kwargs)
    assert pool is not None
    return pool
