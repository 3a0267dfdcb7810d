"""`depot server` never keeps running an embedded cluster that was started
with fsync off (a test harness's, or one from a build before durable
defaults): it restarts it with PostgreSQL's durable settings."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from depot.services.allinone.postgres import LocalPostgres


async def _settings(dsn: str) -> tuple[str, str, str]:
    conn = await asyncpg.connect(dsn)
    try:
        return tuple([await conn.fetchval(f"SHOW {s}") for s in ("fsync", "synchronous_commit", "full_page_writes")])  # type: ignore[return-value]
    finally:
        await conn.close()


@pytest.mark.slow
def test_a_cluster_left_running_fast_is_restarted_durable(tmp_path: Path) -> None:
    fast = LocalPostgres.for_data_dir(tmp_path / "data", durable=False).start()
    try:
        assert asyncio.run(_settings(fast.dsn("postgres"))) == ("off", "off", "off")
        durable = LocalPostgres.for_data_dir(tmp_path / "data").start()
        assert asyncio.run(_settings(durable.dsn("postgres"))) == ("on", "on", "on")
    finally:
        LocalPostgres.for_data_dir(tmp_path / "data").destroy()
