"""`python -m depot.services.manifest serve`.

Environment: DEPOT_STORAGE_URL (file:// or s3://), DEPOT_METADATA_ADDRESS,
DEPOT_INTERNAL_SECRET, DEPOT_LISTEN, DEPOT_S3_* (endpoint, region, SSE),
DEPOT_TLS_* and DEPOT_HEALTH_LISTEN (see depot.services.common.tls).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from depot.services.common import serving, telemetry, tls
from depot.services.common.config import Config

from .server import add_manifest, sweep_staging
from .store import open_store


async def _serve(config: Config) -> None:
    store = await open_store(config.storage_url, **config.store_options())
    sweeper = await sweep_staging(store)
    channel = tls.internal_channel(config.metadata_address, config.client_tls, config.tls)
    try:
        server = serving.new_server()
        port = serving.bind(server, config.listen, config.tls)
        name = add_manifest(
            server,
            store,
            channel,
            config.internal_secret,
            config.reference_policy(),
            idle_timeout_s=config.upload_idle_timeout_s,
        )
        health = await serving.start(server, [name], health_listen=config.health_listen)
        logging.info("manifest service on port %d, store %s", port, store.url)
        await serving.wait_for_signal()
        await serving.stop(server, health, 10)
    finally:
        sweeper.cancel()
        await channel.close()
        await store.aclose()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m depot.services.manifest")
    ap.add_argument("command", choices=["serve"])
    ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format=telemetry.LOG_FORMAT)
    telemetry.setup("depot-manifest")
    try:
        config = Config.from_env(default_port=50052)
        # Refused here, in one line, rather than as a traceback from _serve.
        tls.plaintext_target(
            config.metadata_address, config.client_tls, config.tls, insecure=tls.insecure_from_env(os.environ)
        )
    except ValueError as e:
        print(f"depot-manifest: error: {e}", file=sys.stderr)
        return 2
    serving.run(_serve(config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
