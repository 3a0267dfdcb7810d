"""`python -m depot.services.gc serve|once`.

``serve`` answers RunCollection and also runs a pass every
DEPOT_GC_INTERVAL_S seconds (only the replica holding the lock does work);
``once --force`` runs one pass and prints the report.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys

from depot.services.common import serving, telemetry
from depot.services.common.config import Config
from depot.services.metadata import db

from .collector import Collector
from .server import add_gc


async def _periodic(collector: Collector, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            report = await collector.run("", force=True)
            logging.info("gc pass: %s", report)
        except Exception:  # noqa: BLE001 - keep collecting on the next tick
            logging.exception("gc pass failed")


async def _serve(config: Config) -> None:
    assert config.database_url
    pool = await db.create_pool(config.database_url)
    try:
        server = serving.new_server()
        port = serving.bind(server, config.listen, config.tls)
        health = await serving.start(server, [add_gc(server, pool)], health_listen=config.health_listen)
        logging.info("gc service on port %d", port)
        task = asyncio.create_task(_periodic(Collector(pool), config.gc_interval_s))
        await serving.wait_for_signal()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await serving.stop(server, health, 10)
    finally:
        await pool.close()


async def _once(config: Config, force: bool) -> None:
    assert config.database_url
    pool = await db.create_pool(config.database_url, min_size=1, max_size=2)
    try:
        print(await Collector(pool).run("", force=force))
    finally:
        await pool.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m depot.services.gc")
    ap.add_argument("command", choices=["serve", "once"])
    ap.add_argument("--force", action="store_true", help="really delete (default: dry run)")
    opts = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format=telemetry.LOG_FORMAT)
    telemetry.setup("depot-gc")
    config = Config.from_env(default_port=50053)
    if not config.database_url:
        print("DEPOT_DATABASE_URL is required", file=sys.stderr)
        return 2
    if opts.command == "once":
        asyncio.run(_once(config, opts.force))
    else:
        serving.run(_serve(config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
