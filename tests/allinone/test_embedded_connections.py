"""The embedded PostgreSQL admits every connection the all-in-one's processes may open.

A fixed max_connections=300 ran out at about ten processes: each opens a
metadata pool of up to db.POOL_MAX_SIZE connections and, with workers, a
fan-out pool, and DEPOT_WORKERS allows 64.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import asyncpg

from depot.services.allinone.app import connections_needed
from depot.services.allinone.config import MAX_WORKERS, AllInOneConfig
from depot.services.allinone.postgres import LocalPostgres
from depot.services.metadata import db


def _config(tmp_path: Path, workers: int) -> AllInOneConfig:
    return dataclasses.replace(AllInOneConfig.from_env({"DEPOT_DATA_DIR": str(tmp_path)}), workers=workers)


def test_every_process_pools_fit(tmp_path: Path) -> None:
    assert connections_needed(_config(tmp_path, 1)) == 300  # PostgreSQL's usual default, at least
    most = _config(tmp_path, MAX_WORKERS)
    assert connections_needed(most) >= MAX_WORKERS * (db.POOL_MAX_SIZE + most.fanout.pool_size)


def test_the_cluster_starts_with_that_many(tmp_path: Path) -> None:
    pg = LocalPostgres.for_data_dir(tmp_path / "data", durable=False, max_connections=777).start()
    try:

        async def shown() -> str:
            conn = await asyncpg.connect(pg.dsn("postgres"))
            try:
                return str(await conn.fetchval("SHOW max_connections"))
            finally:
                await conn.close()

        assert asyncio.run(shown()) == "777"
    finally:
        pg.destroy()
