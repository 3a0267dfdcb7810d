"""`python -m depot.services.gc serve|once`.

``serve`` answers RunNow and GetStatus and also runs a pass every
DEPOT_GC_INTERVAL_S seconds (0: never; only the replica holding the lock
does work); ``once --force`` runs one pass and prints the report.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys

from depot.services.common import serving, telemetry
from depot.services.common.config import ConfigError
from depot.services.metadata.public import create_pool

from .config import GcConfig
from .server import Gc


async def _serve(config: GcConfig) -> None:
    pool = await create_pool(config.database_url)
    store = await config.storage.open_store()
    try:
        gc = Gc(pool, config.gc, store)
        server = serving.new_server(gc.callers())
        port = serving.bind(server, config.server.listen, config.server.tls)
        health = await serving.start(server, [gc.add_to(server)], health_listen=config.server.health_listen)
        logging.info("gc service on port %d", port)
        task = gc.start_schedule()
        await serving.wait_for_signal()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await serving.stop(server, health, 10)
    finally:
        await store.aclose()
        await pool.close()


async def _once(config: GcConfig, force: bool) -> None:
    pool = await create_pool(config.database_url, min_size=1, max_size=2)
    store = await config.storage.open_store()
    try:
        print(await Gc(pool, config.gc, store).collector.run("", force=force))
    finally:
        await store.aclose()
        await pool.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m depot.services.gc")
    ap.add_argument("command", choices=["serve", "once"])
    ap.add_argument("--force", action="store_true", help="really delete (default: dry run)")
    opts = ap.parse_args(argv)
    try:
        config = GcConfig.from_env(os.environ)
    except ConfigError as e:
        print(f"depot-gc: error: {e}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format=telemetry.LOG_FORMAT)
    telemetry.setup("depot-gc", config.server.telemetry)
    if opts.command == "once":
        asyncio.run(_once(config, opts.force))
    else:
        serving.run(_serve(config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
