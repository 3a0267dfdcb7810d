"""The all-in-one server in a thread, for tests that build their own configuration.

Kept apart from ``conftest.py``: fixtures live in conftests, what test modules
import lives here (``from support.servers import ServerThread``).
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import threading
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from depot.services.allinone.config import AllInOneConfig


class ServerThread:
    """The all-in-one server in a background thread with its own event loop."""

    def __init__(self, config: AllInOneConfig):
        self.config = config
        self.address = ""
        self.admin_key = ""
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, daemon=True)

    def _main(self) -> None:
        from depot.services.allinone.app import start

        async def run() -> None:
            self._stop = asyncio.Event()
            async with AsyncExitStack() as stack:
                running = await start(self.config, stack)
                self.address = running.address
                self.admin_key = running.admin_key_file.read_text().strip()
                self._ready.set()
                await self._stop.wait()

        self._loop = asyncio.new_event_loop()
        try:
            self._loop.run_until_complete(run())
        except BaseException as e:  # noqa: BLE001 - surfaced by start()
            self._error = e
            self._ready.set()
        finally:
            self._loop.close()

    def start(self) -> ServerThread:
        self._thread.start()
        self._ready.wait(60)
        if self._error:
            raise self._error
        return self

    def stop(self) -> None:
        if self._loop and self._stop and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)


def make_config(data_dir: Path, database_url: str, storage_url: str, **env: str) -> AllInOneConfig:
    return AllInOneConfig.from_env(
        {
            "DEPOT_DATA_DIR": str(data_dir),
            "DEPOT_DATABASE_URL": database_url,
            "DEPOT_STORAGE_URL": storage_url,
            "DEPOT_LISTEN": "127.0.0.1:0",
            **env,
        }
    )


def free_port() -> int:
    """A loopback port free right now (for a server process the test starts)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(port: int, proc: subprocess.Popen[Any], deadline: float) -> None:
    """Waits until the service process on ``port`` answers grpc.health SERVING."""
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        while True:
            assert proc.poll() is None, f"service on {port} exited with {proc.returncode}"
            try:
                if stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status == 1:
                    return
            except grpc.RpcError:
                pass
            assert time.monotonic() < deadline, f"service on {port} did not become healthy"
            time.sleep(0.2)
