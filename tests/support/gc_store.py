"""A Depot server and a blob collector over its store, for the sweep tests (tests/gc/test_sweep*.py).

Versions are logged through the SDK; what the collector's other phases do
(delete, purge) is done with the statements' effect on the versions table,
so the sweep tests pin the sweep alone. Ages: files of a local store are
made old with ``os.utime`` instead of waiting out a grace period.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg

import depot
from depot.services.gc.sweep import BlobCollector, SweepResult
from depot.services.manifest.public import open_store
from support.entities import create_team
from support.servers import ServerThread, make_config

GRACE = 60.0
OLD = time.time() - 10 * GRACE


def log(server: ServerThread, name: str, files: dict[str, bytes], entity: str = "team") -> Any:
    with depot.init(entity=entity, project="p", address=server.address, api_key=server.admin_key) as run:
        art = depot.Artifact(name, type="dataset")
        for path, data in files.items():
            with art.new_file(path, mode="wb") as f:
                f.write(data)
        return run.log_artifact(art).wait()


def verify(server: ServerThread, path: str, root: Path) -> None:
    art = depot.Api(server.address, server.admin_key).artifact(path)
    art.verify(art.download(root))


def age_all(root: Path) -> None:
    """Every blob and manifest of the store becomes older than any grace period."""
    for dirpath, _, names in os.walk(root):
        for n in names:
            os.utime(os.path.join(dirpath, n), (OLD, OLD))


def managed_keys(root: Path) -> set[str]:
    out = set()
    for dirpath, _, names in os.walk(root):
        for n in names:
            rel = os.path.relpath(os.path.join(dirpath, n), root)
            if "/blobs/" in f"/{rel}" or "/manifests/" in f"/{rel}":
                out.add(rel)
    return out


async def sweep(
    database_url: str, store_url: str, work: Path, *, dry_run: bool = False, **store_kw: Any
) -> SweepResult:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    store = await open_store(store_url, **store_kw)
    try:
        return await BlobCollector(pool, store, GRACE, work).run("", dry_run=dry_run)
    finally:
        await store.aclose()
        await pool.close()


async def sql(database_url: str, query: str, *args: Any) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(query, *args)
    finally:
        await conn.close()


# A version's collection name -> its rows. Purge is the collector's; its
# effect on what the sweep sees is that the rows are gone.
PURGE = "DELETE FROM versions WHERE collection_id IN (SELECT id FROM collections WHERE name = $1)"
SOFT_DELETE = (
    "UPDATE versions SET state = 'deleted', delete_time = now(), purge_time = now() + interval '7 days',"
    " delete_reason = 'user' WHERE collection_id IN (SELECT id FROM collections WHERE name = $1)"
)


def local_server(tmp_path: Path, database_url: str) -> Iterator[ServerThread]:
    """A server on a local blob dir with teams ``team`` and ``team-b`` (a test module's ``local`` fixture)."""
    cfg = make_config(tmp_path / "data", database_url, (tmp_path / "blobs").as_uri(), DEPOT_GRACE_PERIOD_S=str(GRACE))
    srv = ServerThread(cfg).start()
    create_team(srv.address, srv.admin_key, "team")
    create_team(srv.address, srv.admin_key, "team-b")
    yield srv
    srv.stop()
