"""`python -m depot.services.manifest serve`.

Environment: DEPOT_INTERNAL_SECRET (required), DEPOT_STORAGE_URL (file://
or s3://), DEPOT_METADATA_ADDRESS, DEPOT_LISTEN, DEPOT_S3_* (endpoint,
region, SSE), DEPOT_REFERENCE_*, DEPOT_TLS_* and DEPOT_HEALTH_LISTEN (see
config.py and depot.services.common.tls); DEPOT_DATABASE_URL (optional)
shares large reference listings with the other replicas (docs/fanout.md).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from depot.services.common import serving, telemetry, tls
from depot.services.common.config import ConfigError

from .config import ManifestConfig
from .fanout import ReferenceFanOut, open_fanout
from .operations import Operations
from .server import GATES, add_manifest, sweep_staging


async def _serve(config: ManifestConfig) -> None:
    settings = config.settings
    store = await settings.open_store()
    sweeper = await sweep_staging(store)
    channel = tls.internal_channel(
        config.metadata_address, settings.client_tls, config.server.tls, insecure=config.insecure
    )
    operations = Operations(settings.operation_settings())
    references = settings.reference_policy()
    fanout: ReferenceFanOut | None = None
    try:
        if config.database_url:
            fanout, references = await open_fanout(config.database_url, store, references, config.fanout)
        server = serving.new_server(GATES)
        port = serving.bind(server, config.server.listen, config.server.tls)
        name = add_manifest(
            server,
            store,
            channel,
            config.internal_secret,
            references,
            idle_timeout_s=settings.upload_idle_timeout_s,
            operations=operations,
            gc_grace_s=settings.gc_grace_s,
        )
        health = await serving.start(server, [name], health_listen=config.server.health_listen)
        logging.info("manifest service on port %d, store %s", port, store.url)
        await serving.wait_for_signal()
        await serving.stop(server, health, 10)
    finally:
        sweeper.cancel()
        await operations.close()
        if fanout is not None:
            await fanout.close()
        await channel.close()
        await store.aclose()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m depot.services.manifest")
    ap.add_argument("command", choices=["serve"])
    ap.parse_args(argv)
    try:
        config = ManifestConfig.from_env(os.environ)
    except ConfigError as e:
        print(f"depot-manifest: error: {e}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format=telemetry.LOG_FORMAT)
    telemetry.setup("depot-manifest", config.server.telemetry)
    serving.run(_serve(config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
