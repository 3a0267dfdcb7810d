"""Building and running grpc.aio servers the same way for every service."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from collections.abc import Coroutine
from typing import Any

import grpc

from . import decoding, telemetry
from .health import add_health, mark_serving

log = logging.getLogger(__name__)

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


def new_server(*, reuse_port: bool = False) -> grpc.aio.Server:
    """A server; ``reuse_port`` lets processes of this user share its port
    (the all-in-one's workers). Off otherwise, so a taken port is an error."""
    options = [o for o in OPTIONS if o[0] != "grpc.so_reuseport"] + [("grpc.so_reuseport", int(reuse_port))]
    interceptors = [*decoding.server_interceptors(), *telemetry.server_interceptors()]
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


def bind(server: grpc.aio.Server, address: str) -> int:
    port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"cannot listen on {address}")
    return port


async def start(server: grpc.aio.Server, service_names: list[str]) -> None:
    health = add_health(server, service_names)
    await server.start()
    await mark_serving(health, service_names)


async def wait_for_signal() -> None:
    """Returns on SIGINT/SIGTERM (Kubernetes sends SIGTERM before killing a pod)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
