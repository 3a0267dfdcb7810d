"""`python -m depot.services.metadata serve|migrate|bootstrap-admin`.

Reads configuration from the environment (DEPOT_DATABASE_URL is required,
DEPOT_LISTEN, DEPOT_INTERNAL_SECRET), wires the service and serves it.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from depot.services.common import serving, telemetry
from depot.services.common.config import Config

from . import db
from .access import Access
from .server import add_metadata


async def _serve(config: Config) -> None:
    assert config.database_url
    pool = await db.create_pool(config.database_url)
    try:
        server = serving.new_server()
        port = serving.bind(server, config.listen, config.tls)
        names = add_metadata(server, pool, config.internal_secret)
        health = await serving.start(server, names, health_listen=config.health_listen)
        logging.info("metadata service on port %d", port)
        await serving.wait_for_signal()
        await serving.stop(server, health, 10)
    finally:
        await pool.close()


async def _bootstrap(config: Config) -> None:
    assert config.database_url
    pool = await db.create_pool(config.database_url, min_size=1, max_size=2)
    try:
        key = await Access(db.Database(pool)).bootstrap_admin()
        print(key if key else "a superuser already exists; nothing done")
    finally:
        await pool.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m depot.services.metadata")
    ap.add_argument("command", choices=["serve", "migrate", "bootstrap-admin"])
    opts = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format=telemetry.LOG_FORMAT)
    telemetry.setup("depot-metadata")
    config = Config.from_env(default_port=50051)
    if not config.database_url:
        print("DEPOT_DATABASE_URL is required", file=sys.stderr)
        return 2
    if opts.command == "migrate":
        for name in asyncio.run(db.migrate(config.database_url)):
            print("applied", name)
    elif opts.command == "bootstrap-admin":
        asyncio.run(_bootstrap(config))
    else:
        serving.run(_serve(config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
