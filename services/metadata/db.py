"""PostgreSQL pool and schema migrations.

Migrations are plain SQL files ``migrations/NNNN_name.sql`` applied in order,
each in its own transaction, recorded in ``schema_migrations`` with the
sha256 of the file. An advisory lock makes concurrent migrators (several pods
starting) wait for each other. An applied migration whose file was edited
since is refused, by the migrator and by the services at start, naming the
file (``python -m depot.services.metadata migrate --status`` shows them all).
"""

from __future__ import annotations

import hashlib
import json
import re
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from importlib import resources
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from depot.services.common import validate

# A connection as the domain code gets it: the current transaction's, or one
# lent by the pool (a proxy with the same query methods).
Connection = asyncpg.Connection | PoolConnectionProxy

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


def checksum(sql: str) -> str:
    """What schema_migrations records of a migration: the sha256 of its text."""
    return hashlib.sha256(sql.encode()).hexdigest()


class MigrationEdited(Exception):
    """An applied migration's file no longer matches what was applied."""


@dataclass(frozen=True)
class MigrationState:
    version: int
    name: str  # the file name; "" for an applied version this build has no file for
    state: str  # "applied", "edited", "pending" or "unknown"
    recorded: str | None  # checksum recorded when applied (None before checksums were recorded)
    current: str | None  # checksum of the file now


def edited_error(edited: list[MigrationState]) -> MigrationEdited:
    names = ", ".join(f"{m.name} (applied sha256 {m.recorded}, file now {m.current})" for m in edited)
    return MigrationEdited(
        f"applied migration edited: {names}. An applied migration must never change: restore the file "
        "as it was applied and put the change in a new numbered migration"
    )


# Older databases recorded versions only: the checksum column is the
# migrator's own bookkeeping, added here (schema.sql has it) rather than by a
# numbered migration, so that the migrator can read it before it runs any.
_CHECKSUM_COLUMN = "ALTER TABLE schema_migrations ADD COLUMN IF NOT EXISTS checksum text"


async def migration_states(
    conn: Connection, available: list[tuple[int, str, str]] | None = None
) -> list[MigrationState]:
    """Every migration's state: applied as the file is now, edited since, pending, or unknown here."""
    files = migrations() if available is None else available
    recorded: dict[int, str | None] = {}
    if await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL"):
        has_checksum = await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM information_schema.columns"
            " WHERE table_name = 'schema_migrations' AND column_name = 'checksum')"
        )
        column = "checksum" if has_checksum else "NULL::text"
        recorded = {r[0]: r[1] for r in await conn.fetch(f"SELECT version, {column} FROM schema_migrations")}
    states = []
    for version, name, sql in files:
        current = checksum(sql)
        if version not in recorded:
            states.append(MigrationState(version, name, "pending", None, current))
            continue
        was = recorded.pop(version)
        # No checksum recorded (applied before they were): trusted as applied.
        state = "edited" if was is not None and was != current else "applied"
        states.append(MigrationState(version, name, state, was, current))
    # Versions in the database with no file: a newer build migrated it.
    states += [MigrationState(v, "", "unknown", c, None) for v, c in recorded.items()]
    return sorted(states, key=lambda m: m.version)


async def check_migrations(conn: Connection) -> None:
    """Raises MigrationEdited when an applied migration's file changed since (services check it at start)."""
    edited = [m for m in await migration_states(conn) if m.state == "edited"]
    if edited:
        raise edited_error(edited)


async def migrate(dsn: str, available: list[tuple[int, str, str]] | None = None) -> list[str]:
    """Applies pending migrations; returns the names of those applied.

    Refuses (MigrationEdited, nothing applied) when an applied migration's
    file was edited since: the database would not be what the files say.
    Checksums missing from an older database are recorded from the files.
    """
    files = migrations() if available is None else available
    conn = await asyncpg.connect(dsn)
    applied: list[str] = []
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATE_LOCK)
        states = await migration_states(conn, files)
        edited = [m for m in states if m.state == "edited"]
        if edited:
            raise edited_error(edited)
        if any(m.state != "pending" for m in states):
            await conn.execute(_CHECKSUM_COLUMN)
            await conn.executemany(
                "UPDATE schema_migrations SET checksum = $2 WHERE version = $1 AND checksum IS NULL",
                [(m.version, m.current) for m in states if m.state == "applied" and m.recorded is None],
            )
        sql_of = {version: sql for version, _, sql in files}
        for m in states:
            if m.state != "pending":
                continue
            async with conn.transaction():
                await conn.execute(sql_of[m.version])
                if m.version == files[0][0]:
                    await conn.execute(_CHECKSUM_COLUMN)  # the first migration creates the table
                await conn.execute(
                    "INSERT INTO schema_migrations (version, checksum) VALUES ($1, $2)", m.version, m.current
                )
            applied.append(m.name)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATE_LOCK)
        await conn.close()
    return applied


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    # Any stored interval reads back (clamped), whatever wrote it.
    await conn.set_type_codec(
        "interval",
        encoder=validate.interval_to_pg,
        decoder=validate.interval_from_pg,
        schema="pg_catalog",
        format="tuple",
    )


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


# Bounds on a database that stops answering (frozen, partitioned, overloaded).
# Without them a request waited forever on a SIGSTOPped PostgreSQL: asyncpg's
# connect waits 60 s, queries and pool waits not at all. With them a request
# gets UNAVAILABLE within ACQUIRE_TIMEOUT_S + CLIENT_TIMEOUT_S (20 s) at most,
# CLIENT_TIMEOUT_S (15 s) when a pooled connection was free.
#
# Opening a connection (TCP/socket + startup + init codecs).
CONNECT_TIMEOUT_S = 5.0
# Waiting for a pooled connection, connecting included; also bounds the release.
ACQUIRE_TIMEOUT_S = 5.0
# One statement, on both sides: PostgreSQL cancels it (statement_timeout,
# which also ends lock waits behind a stuck transaction), and asyncpg gives
# up when no answer comes at all (command_timeout, a frozen server). Every
# query a request runs is keyed or paged and takes milliseconds; the longest
# legitimate one, the GC's expiry pass over a large backlog, overrides both
# for its own statements (services/gc/collector.py: SET LOCAL
# statement_timeout, and timeout=).
QUERY_TIMEOUT_S = 10.0
# asyncpg's own timer runs a little longer, so a statement PostgreSQL
# cancelled answers DEADLINE_EXCEEDED (57014: the same query would run as
# long again, so not retried), and only a server that answers nothing at all
# trips the client timer (TimeoutError: UNAVAILABLE, retried).
CLIENT_TIMEOUT_S = QUERY_TIMEOUT_S + 5.0
# Row-lock waits end sooner than the statement: the holder is a live commit
# (milliseconds) or a stuck session PostgreSQL ends within
# IDLE_IN_TRANSACTION_TIMEOUT_S, so a wait past this is ABORTED (retryable).
LOCK_TIMEOUT_S = 5.0
# A transaction left open by a frozen or partitioned server process holds
# row locks (a collection's, during a commit) that every writer of that
# collection waits for; PostgreSQL ends such a session after this long.
IDLE_IN_TRANSACTION_TIMEOUT_S = 30.0


# Connections one process's pool opens at most (the all-in-one sizes its
# embedded PostgreSQL's max_connections from it).
POOL_MAX_SIZE = 20


async def create_pool(dsn: str, **kwargs: Any) -> asyncpg.Pool:
    kwargs.setdefault("min_size", 2)
    kwargs.setdefault("max_size", POOL_MAX_SIZE)
    kwargs.setdefault("timeout", CONNECT_TIMEOUT_S)
    kwargs.setdefault("command_timeout", CLIENT_TIMEOUT_S)
    settings = {
        "statement_timeout": f"{int(QUERY_TIMEOUT_S * 1000)}",
        "lock_timeout": f"{int(LOCK_TIMEOUT_S * 1000)}",
        "idle_in_transaction_session_timeout": f"{int(IDLE_IN_TRANSACTION_TIMEOUT_S * 1000)}",
    }
    kwargs["server_settings"] = {**settings, **kwargs.get("server_settings", {})}
    pool = await asyncpg.create_pool(dsn, init=_init_connection, reset=_reset_connection, **kwargs)
    assert pool is not None
    return pool


def _gone(conn: Any) -> bool:
    try:
        return bool(conn.is_closed())
    except asyncpg.InterfaceError:
        return True  # closed, and already taken back by the pool


# The connection of the transaction the current request runs in, if any,
# and what to do once it commits.
_current: ContextVar[Connection | None] = ContextVar("depot_transaction", default=None)
_on_commit: ContextVar[list[Callable[[], None]] | None] = ContextVar("depot_on_commit", default=None)


class Database:
    """The pool as the domain code uses it.

    Inside ``transaction()`` every query of the request — access checks
    included — runs on that transaction's connection, and a nested
    ``transaction()`` joins it (no savepoint). So a mutation and its
    idempotency record commit together, and a request never holds one
    connection while waiting for a second, which could exhaust the pool
    under load. One request must not run queries from concurrent tasks.
    """

    def __init__(self, pool: asyncpg.Pool):
        self.pool = pool

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        async with self.connection() as conn:
            return await conn.fetch(query, *args)

    async def fetchrow(self, query: str, *args: Any) -> asyncpg.Record | None:
        async with self.connection() as conn:
            return await conn.fetchrow(query, *args)

    async def fetchval(self, query: str, *args: Any) -> Any:
        async with self.connection() as conn:
            return await conn.fetchval(query, *args)

    async def execute(self, query: str, *args: Any) -> str:
        async with self.connection() as conn:
            return await conn.execute(query, *args)

    @asynccontextmanager
    async def _checkout(self) -> AsyncIterator[Connection]:
        async with self.pool.acquire(timeout=ACQUIRE_TIMEOUT_S) as conn:
            try:
                yield conn
            except TimeoutError:
                # asyncpg gave up waiting for the database (command_timeout).
                # Rolling back or resetting would wait as long again for a
                # server that may be frozen; closing the session makes
                # PostgreSQL roll back by itself, and the pool opens a new one.
                if not _gone(conn):
                    conn.terminate()
                raise

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        """The current transaction's connection, or one from the pool."""
        conn = _current.get()
        if conn is not None:
            yield conn
            return
        async with self._checkout() as conn:
            yield conn

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        """A transaction, or the one this request is already in."""
        conn = _current.get()
        if conn is not None:
            yield conn
            return
        callbacks: list[Callable[[], None]] = []
        async with self._checkout() as conn:
            tx = conn.transaction()
            await tx.start()
            tokens = _current.set(conn), _on_commit.set(callbacks)
            try:
                yield conn
            except TimeoutError:
                raise  # no rollback on a stalled connection: _checkout closes it
            except BaseException:
                # A session that is gone rolled back with it; asking would
                # only replace the cause with "the connection is closed".
                if not _gone(conn):
                    await tx.rollback()
                raise
            else:
                await tx.commit()
            finally:
                _current.reset(tokens[0])
                _on_commit.reset(tokens[1])
        for callback in callbacks:
            callback()

    def on_commit(self, callback: Callable[[], None]) -> None:
        """Calls ``callback`` once the current transaction has committed (at
        once outside one): for caches that must only learn committed rows."""
        callbacks = _on_commit.get()
        if callbacks is None:
            callback()
        else:
            callbacks.append(callback)


def one(row: asyncpg.Record | None) -> asyncpg.Record:
    """The row a statement always returns (an upsert's, or one this request
    wrote or locked): a missing one is a bug, not a NOT_FOUND."""
    if row is None:
        raise RuntimeError("a statement that always returns a row returned none")
    return row
