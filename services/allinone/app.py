"""All three services in one process, for laptops and the quickstart.

Uses DEPOT_DATABASE_URL / DEPOT_STORAGE_URL when set, else an embedded
PostgreSQL and a blob directory under the data dir. On first start it
creates the superuser ``admin`` and writes its API key to
``<data dir>/admin.key`` (mode 0600).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import grpc

from depot.services.common import serving
from depot.services.common.config import Config
from depot.services.gc.server import add_gc
from depot.services.manifest.server import add_manifest
from depot.services.manifest.store import open_store
from depot.services.metadata import db
from depot.services.metadata.access import Access
from depot.services.metadata.server import add_metadata

from .postgres import LocalPostgres

log = logging.getLogger(__name__)


@dataclass
class Running:
    address: str
    admin_key_file: Path
    server: grpc.aio.Server


async def start(config: Config, stack: AsyncExitStack) -> Running:
    """Starts everything; ``stack`` stops it all again in reverse order."""
    dsn = config.database_url
    if dsn is None:
        pg = LocalPostgres.for_data_dir(config.data_dir)
        await asyncio.to_thread(pg.start)
        stack.callback(pg.stop)
        dsn = await pg.create_database("depot")
    applied = await db.migrate(dsn)
    if applied:
        log.info("applied migrations: %s", ", ".join(applied))
    pool = await db.create_pool(dsn)
    stack.push_async_callback(pool.close)

    key_file = config.data_dir / "admin.key"
    key = await Access(db.Database(pool)).bootstrap_admin()
    if key is not None:
        _write_secret(key_file, str(key))

    store_kwargs = config.s3_options() if config.storage_url.startswith("s3://") else {}
    store = await open_store(config.storage_url, **store_kwargs)
    stack.push_async_callback(store.aclose)

    server = serving.new_server()
    port = serving.bind(server, config.listen)
    host = config.listen.rsplit(":", 1)[0]
    address = f"{'127.0.0.1' if host in ('0.0.0.0', '[::]', '') else host}:{port}"
    # The manifest service checks access by calling metadata, here in-process.
    channel = grpc.aio.insecure_channel(address)
    stack.push_async_callback(channel.close)
    names = [
        add_metadata(server, pool, config.internal_secret),
        add_manifest(server, store, channel, config.internal_secret, config.reference_policy()),
        add_gc(server, pool),
    ]
    await serving.start(server, names)
    stack.push_async_callback(server.stop, 5)
    (config.data_dir / "server.json").write_text(
        json.dumps({"address": address, "pid": os.getpid(), "admin_key_file": str(key_file)})
    )
    return Running(address, key_file, server)


def _write_secret(path: Path, value: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")


async def serve(config: Config) -> None:
    async with AsyncExitStack() as stack:
        running = await start(config, stack)
        print(f"depot: serving on {running.address} (metadata, manifest, gc)", flush=True)
        print(f"depot: admin API key in {running.admin_key_file}", flush=True)
        await serving.wait_for_signal()
        print("depot: stopping", flush=True)


__all__ = ["start", "serve", "Running"]
