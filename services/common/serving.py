"""Building and running grpc.aio servers the same way for every service."""

from __future__ import annotations

import asyncio
import logging
import signal

import grpc

from .health import add_health, mark_serving
from .telemetry import TracingInterceptor

log = logging.getLogger(__name__)

# Entry batches and blob chunks are a few MiB at most; anything larger is a bug.
MAX_MESSAGE = 16 * 1024 * 1024
OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE),
    ("grpc.max_send_message_length", MAX_MESSAGE),
    ("grpc.so_reuseport", 0),
]


def new_server() -> grpc.aio.Server:
    return grpc.aio.server(options=OPTIONS, interceptors=[TracingInterceptor()])


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
