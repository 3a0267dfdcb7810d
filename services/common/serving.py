"""Building and running grpc.aio servers the same way for every service."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from collections.abc import Coroutine, Mapping
from typing import Any

import grpc
from grpc_health.v1 import health_pb2_grpc

from . import telemetry
from .health import add_health, mark_serving
from .interceptor import EdgeInterceptor, Gate
from .otel_loop import LoopLag
from .tls import ServerTLS

log = logging.getLogger(__name__)

# The event-loop lag probe of each started server (with a metrics exporter only).
_loop_probes: dict[grpc.aio.Server, LoopLag] = {}

# Entry batches and blob chunks are a few MiB at most; anything larger is a bug.
MAX_MESSAGE = 16 * 1024 * 1024
OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE),
    ("grpc.max_send_message_length", MAX_MESSAGE),
    ("grpc.so_reuseport", 0),
]


def run(main: Coroutine[Any, Any, None]) -> None:
    """Runs a service's main coroutine on uvloop when installed.

    asyncpg's protocol and the event loop's transports are in C under uvloop;
    measured here it lowers alias-resolution p99 by about a third
    (bench/metadata.py). grpc.aio runs on it unchanged.
    """
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux/macOS
        asyncio.run(main)
        return
    uvloop.run(main)


def new_server(gates: Mapping[str, Gate], *, reuse_port: bool = False) -> grpc.aio.Server:
    """A server; ``reuse_port`` lets processes of this user share its port
    (the all-in-one's workers). Off otherwise, so a taken port is an error.
    ``gates``: how the edge admits each service's calls, by full name; a
    service served but missing here answers every call UNAUTHENTICATED
    (grpc.health.v1 is open without an entry).
    """
    options = [o for o in OPTIONS if o[0] != "grpc.so_reuseport"] + [("grpc.so_reuseport", int(reuse_port))]
    # Tracing outside the edge, so an error logged by the edge carries its trace id.
    interceptors = [*telemetry.server_interceptors(), EdgeInterceptor(gates)]
    return grpc.aio.server(options=options, interceptors=interceptors)


def check_port_free(address: str) -> None:
    """Raises OSError when something already listens on ``address`` (port 0: nothing to check)."""
    host, port = address.rsplit(":", 1)
    if int(port) == 0:
        return
    host = host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # SO_REUSEADDR: a port with only TIME_WAIT connections left counts as free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host or "0.0.0.0", int(port)))
        except OSError as e:
            raise OSError(f"cannot listen on {address}: {e.strerror}") from None


def bind(server: grpc.aio.Server, address: str, tls: ServerTLS | None = None) -> int:
    """Listens on ``address``: TLS when ``tls`` is given, else plaintext."""
    if tls is None:
        port = server.add_insecure_port(address)
    else:
        port = server.add_secure_port(address, tls.credentials())
    if port == 0:
        raise OSError(f"cannot listen on {address}")
    return port


async def start(
    server: grpc.aio.Server, service_names: list[str], *, health_listen: str | None = None
) -> grpc.aio.Server | None:
    """Starts ``server`` with grpc.health.v1 on it.

    ``health_listen``: also answer grpc.health.v1 (and nothing else) in
    plaintext there, for probes that cannot do TLS (Kubernetes' grpc probes);
    returns that server, for the caller to stop with the main one.
    """
    health = add_health(server)
    health_server = None
    if health_listen is not None:
        # A server of its own: a second port on ``server`` would serve every
        # RPC in plaintext, not just health.
        health_server = grpc.aio.server()
        health_pb2_grpc.add_HealthServicer_to_server(health, health_server)
        bind(health_server, health_listen)
        await health_server.start()
    await server.start()
    probe = telemetry.loop_lag()
    if probe is not None:
        probe.start()
        _loop_probes[server] = probe
    await mark_serving(health, service_names)
    return health_server


async def stop(server: grpc.aio.Server, health_server: grpc.aio.Server | None, grace: float) -> None:
    probe = _loop_probes.pop(server, None)
    if probe is not None:
        await probe.stop()
    await server.stop(grace)
    if health_server is not None:
        await health_server.stop(0)


async def wait_for_signal() -> None:
    """Returns on SIGINT/SIGTERM (Kubernetes sends SIGTERM before killing a pod)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
