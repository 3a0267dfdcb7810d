"""Migrations record a checksum; an edited applied migration is refused.

Against the suite's real PostgreSQL: each test gets a database migrated from
the files as they are (the template), then plays one situation — clean, an
edited file, a pending file, a database from before checksums, a version
this build has no file for — through db.py and through the CLI.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import asyncpg
import pytest

from depot.services.metadata import db
from depot.services.metadata.__main__ import main


async def _states(dsn: str, available: list[tuple[int, str, str]] | None = None) -> list[db.MigrationState]:
    conn = await asyncpg.connect(dsn)
    try:
        return await db.migration_states(conn, available)
    finally:
        await conn.close()


async def _execute(dsn: str, sql: str, *args: object) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql, *args)
    finally:
        await conn.close()


def _status(dsn: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    monkeypatch.setenv("DEPOT_DATABASE_URL", dsn)
    code = main(["migrate", "--status"])
    return code, capsys.readouterr().out.splitlines()


def _edited(version: int) -> list[tuple[int, str, str]]:
    """The migrations as files, with ``version``'s text changed."""
    return [(v, name, sql + "\n-- edited\n" if v == version else sql) for v, name, sql in db.migrations()]


def test_clean_database_every_migration_applied_with_its_checksum(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    states = asyncio.run(_states(database_url))
    files = db.migrations()
    assert [m.name for m in states] == [name for _, name, _ in files]
    for m, (_, _, sql) in zip(states, files):
        assert (m.state, m.recorded, m.current) == ("applied", db.checksum(sql), db.checksum(sql))
    code, lines = _status(database_url, monkeypatch, capsys)
    assert code == 0
    assert lines == [f"{v:04d} {name} applied checksum ok" for v, name, _ in files]


def test_an_edited_applied_migration_is_refused_naming_the_file(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    version, name, _ = db.migrations()[2]
    with pytest.raises(db.MigrationEdited, match=name) as caught:
        asyncio.run(db.migrate(database_url, _edited(version)))
    assert "new numbered migration" in str(caught.value)
    (edited,) = [m for m in asyncio.run(_states(database_url, _edited(version))) if m.state != "applied"]
    assert (edited.version, edited.state) == (version, "edited")

    # The same seen from the database's side (the installed file differs from
    # what was applied): --status says so and exits 1; migrate refuses.
    asyncio.run(_execute(database_url, "UPDATE schema_migrations SET checksum = 'f00d' WHERE version = $1", version))
    code, lines = _status(database_url, monkeypatch, capsys)
    assert code == 1
    assert f"{version:04d} {name} edited CHECKSUM MISMATCH (applied f00d)" in lines
    assert main(["migrate"]) == 1
    err = capsys.readouterr().err
    assert name in err and "f00d" in err


def test_the_service_refuses_to_start_on_an_edited_migration(database_url: str) -> None:
    version, name, _ = db.migrations()[0]
    asyncio.run(_execute(database_url, "UPDATE schema_migrations SET checksum = 'f00d' WHERE version = $1", version))
    env = {
        **os.environ,
        "DEPOT_DATABASE_URL": database_url,
        "DEPOT_INTERNAL_SECRET": "test-secret-" + os.urandom(8).hex(),
        "DEPOT_LISTEN": "127.0.0.1:0",
    }
    result = subprocess.run(
        [sys.executable, "-m", "depot.services.metadata", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert f"depot-metadata: error: applied migration edited: {name}" in result.stderr


def test_a_pending_migration_is_listed_then_applied_with_its_checksum(database_url: str) -> None:
    extra = (9999, "9999_extra.sql", "CREATE TABLE extra_9999 (id integer)")
    available = [*db.migrations(), extra]
    assert asyncio.run(_states(database_url, available))[-1].state == "pending"
    assert asyncio.run(db.migrate(database_url, available)) == ["9999_extra.sql"]
    last = asyncio.run(_states(database_url, available))[-1]
    assert (last.name, last.state, last.recorded) == ("9999_extra.sql", "applied", db.checksum(extra[2]))
    # ...and a build without that file sees a version it does not know.
    unknown = asyncio.run(_states(database_url))[-1]
    assert (unknown.version, unknown.name, unknown.state) == (9999, "", "unknown")


def test_pending_in_the_cli(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    version, name, _ = db.migrations()[-1]
    asyncio.run(_execute(database_url, "DELETE FROM schema_migrations WHERE version = $1", version))
    code, lines = _status(database_url, monkeypatch, capsys)
    assert code == 0  # pending is normal before `migrate`; only an edit is an error
    assert lines[-1] == f"{version:04d} {name} pending"


def test_a_database_from_before_checksums_is_adopted(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    asyncio.run(_execute(database_url, "ALTER TABLE schema_migrations DROP COLUMN checksum"))
    states = asyncio.run(_states(database_url))
    assert {(m.state, m.recorded) for m in states} == {("applied", None)}
    code, lines = _status(database_url, monkeypatch, capsys)
    assert code == 0 and all(line.endswith("no checksum recorded yet (the next migrate records it)") for line in lines)
    assert asyncio.run(db.migrate(database_url)) == []
    assert all(m.recorded == m.current for m in asyncio.run(_states(database_url)))
