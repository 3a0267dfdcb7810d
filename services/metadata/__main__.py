"""`python -m depot.services.metadata serve|migrate [--status]|bootstrap-admin`.

Reads configuration from the environment (DEPOT_DATABASE_URL always;
``serve`` also DEPOT_INTERNAL_SECRET, DEPOT_LISTEN, DEPOT_TLS_*,
DEPOT_HEALTH_LISTEN and DEPOT_GRACE_PERIOD_S: see config.py), wires the service and serves it.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

import asyncpg

from depot.services.common import serving, telemetry
from depot.services.common.config import ConfigError, TelemetryConfig

from . import db
from .access import Access
from .config import MetadataConfig, database_url
from .server import Metadata


async def _serve(config: MetadataConfig) -> None:
    pool = await db.create_pool(config.database_url)
    try:
        async with pool.acquire() as conn:
            # Serving a schema that is not what the files say would fail
            # later and obscurely: refuse now, naming the edited file.
            await db.check_migrations(conn)
        metadata = Metadata(pool, config.internal_secret, grace=config.grace)
        server = serving.new_server(metadata.callers())
        port = serving.bind(server, config.server.listen, config.server.tls)
        names = metadata.add_to(server)
        health = await serving.start(server, names, health_listen=config.server.health_listen)
        metadata.start()
        logging.info("metadata service on port %d", port)
        await serving.wait_for_signal()
        await metadata.aclose()
        await serving.stop(server, health, 10)
    finally:
        await pool.close()


async def _status(dsn: str) -> int:
    """Prints each migration's state; 1 when one was edited after it was applied."""
    conn = await asyncpg.connect(dsn)
    try:
        states = await db.migration_states(conn)
    finally:
        await conn.close()
    for m in states:
        check = {"applied": "checksum ok", "edited": f"CHECKSUM MISMATCH (applied {m.recorded})"}.get(m.state, "")
        if m.state == "applied" and m.recorded is None:
            check = "no checksum recorded yet (the next migrate records it)"
        print(f"{m.version:04d} {m.name or '(no file in this build)'} {m.state} {check}".rstrip())
    return 1 if any(m.state == "edited" for m in states) else 0


async def _bootstrap(dsn: str) -> None:
    pool = await db.create_pool(dsn, min_size=1, max_size=2)
    try:
        key = await Access(db.Database(pool)).bootstrap_admin()
        print(key if key else "a superuser already exists; nothing done")
    finally:
        await pool.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m depot.services.metadata")
    ap.add_argument("command", choices=["serve", "migrate", "bootstrap-admin"])
    ap.add_argument("--status", action="store_true", help="migrate: list applied/pending migrations, apply nothing")
    opts = ap.parse_args(argv)
    if opts.status and opts.command != "migrate":
        ap.error("--status goes with migrate")
    try:
        # migrate and bootstrap-admin (a Kubernetes Job, an operator once)
        # only touch the database: they need nothing else.
        config = MetadataConfig.from_env(os.environ) if opts.command == "serve" else None
        dsn = config.database_url if config else database_url(os.environ)
        telemetry_config = config.server.telemetry if config else TelemetryConfig.from_env(os.environ)
    except ConfigError as e:
        print(f"depot-metadata: error: {e}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format=telemetry.LOG_FORMAT)
    telemetry.setup("depot-metadata", telemetry_config)
    try:
        if config is not None:
            serving.run(_serve(config))
        elif opts.status:
            return asyncio.run(_status(dsn))
        elif opts.command == "migrate":
            for name in asyncio.run(db.migrate(dsn)):
                print("applied", name)
        else:
            asyncio.run(_bootstrap(dsn))
    except db.MigrationEdited as e:
        print(f"depot-metadata: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
