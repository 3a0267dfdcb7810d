"""A call a busy server never took up is sent again, not reported CANCELLED.

gRPC cancels a call that waits in a server's queue, not yet handed to the
application, for longer than ``grpc.server_max_unrequested_time_in_server``
(30 s by default): it does so when the server asks for its next call, so the
call is dropped exactly when the server could take it. A grpc.aio server
whose event loop is blocked does not ask. That was bench/ingest.py's
``DepotError: CANCELLED`` at 64 clients. No handler ran, so sending it again
is safe (and every SDK call is idempotent anyway).

Real parts: a grpc.aio server on loopback with the limit lowered to 1 s, its
loop blocked by one handler for 1.8 s while four more calls arrive.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from depot._client import Client
from depot._exceptions import DepotError, from_rpc_error, is_transient

BLOCK_S = 3.0


class _Health(health_pb2_grpc.HealthServicer):
    def __init__(self) -> None:
        self.handled = 0
        self.blocking = threading.Event()

    async def Check(
        self, request: health_pb2.HealthCheckRequest, context: grpc.aio.ServicerContext
    ) -> health_pb2.HealthCheckResponse:  # type: ignore[override]
        self.handled += 1
        if request.service == "block":
            self.blocking.set()
            time.sleep(BLOCK_S)  # blocks the event loop: the server asks for no new call meanwhile
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)

    async def Watch(  # type: ignore[override]
        self, request: health_pb2.HealthCheckRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[health_pb2.HealthCheckResponse]:
        yield health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)
        await asyncio.sleep(30)


@pytest.fixture
def busy_server() -> Iterator[tuple[str, _Health]]:
    servicer = _Health()
    started = threading.Event()
    stop: list[asyncio.Event] = []
    port: list[int] = []

    async def main() -> None:
        server = grpc.aio.server(options=[("grpc.server_max_unrequested_time_in_server", 1)])
        health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
        port.append(server.add_insecure_port("127.0.0.1:0"))
        await server.start()
        stop.append(asyncio.Event())
        started.set()
        await stop[0].wait()
        await server.stop(None)

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    assert started.wait(10)
    try:
        yield f"127.0.0.1:{port[0]}", servicer
    finally:
        loop.call_soon_threadsafe(stop[0].set)
        thread.join(10)
        loop.close()


def _calls_while_blocked(address: str, servicer: _Health, call: object) -> list[object]:
    """Four calls sent while one handler blocks the server's loop; what each ended with."""
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        stub.Check(health_pb2.HealthCheckRequest(), timeout=5)  # connected
        blocker = threading.Thread(
            target=lambda: stub.Check(health_pb2.HealthCheckRequest(service="block"), timeout=10)
        )
        blocker.start()
        assert servicer.blocking.wait(30)
        results: list[object] = [None] * 4

        def one(i: int) -> None:
            try:
                results[i] = call(stub)  # type: ignore[operator]
            except (grpc.RpcError, DepotError) as e:
                results[i] = e

        threads = [threading.Thread(target=one, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        blocker.join(30)
        return results


def test_grpc_cancels_calls_a_blocked_server_did_not_take_up(busy_server: tuple[str, _Health]) -> None:
    """The failure itself, without the SDK: this is what reached callers."""
    address, servicer = busy_server
    results = _calls_while_blocked(
        address, servicer, lambda stub: stub.Check(health_pb2.HealthCheckRequest(), timeout=10)
    )
    cancelled = [r for r in results if isinstance(r, grpc.RpcError)]
    assert cancelled, results  # at least one waited past the 1 s limit
    assert all(r.code() == grpc.StatusCode.CANCELLED for r in cancelled)
    assert all(is_transient(r) for r in cancelled)


def test_the_sdk_sends_such_a_call_again(busy_server: tuple[str, _Health]) -> None:
    address, servicer = busy_server
    client = Client(address, "unused-key", insecure=True, retry_window=20)
    attempts: list[int] = []

    def attempt(stub: health_pb2_grpc.HealthStub) -> health_pb2.HealthCheckResponse:
        attempts.append(1)
        return stub.Check(health_pb2.HealthCheckRequest(), timeout=10)

    try:
        results = _calls_while_blocked(address, servicer, lambda stub: client.retrying(lambda: attempt(stub)))
    finally:
        client.close()
    assert all(isinstance(r, health_pb2.HealthCheckResponse) for r in results), results
    assert len(attempts) > 4  # some were cancelled and sent again...
    assert servicer.handled == 6  # ...and none ran twice: the first, the blocker, and the four


def test_a_call_this_process_cancelled_is_not_sent_again(busy_server: tuple[str, _Health]) -> None:
    """Ctrl-C cancels the call here (call.cancel()); that CANCELLED is final."""
    address, _ = busy_server
    with grpc.insecure_channel(address) as channel:
        call = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(), timeout=10)
        assert next(call).status == health_pb2.HealthCheckResponse.SERVING
        call.cancel()
        with pytest.raises(grpc.RpcError) as caught:
            next(call)
    assert caught.value.code() == grpc.StatusCode.CANCELLED
    assert not is_transient(caught.value)
    assert "Locally cancelled" in str(from_rpc_error(caught.value))


def test_a_call_whose_channel_this_process_closed_is_not_sent_again(busy_server: tuple[str, _Health]) -> None:
    address, servicer = busy_server
    channel = grpc.insecure_channel(address)
    future = health_pb2_grpc.HealthStub(channel).Check.future(
        health_pb2.HealthCheckRequest(service="block"), timeout=10
    )
    assert servicer.blocking.wait(30)
    channel.close()
    with pytest.raises(grpc.RpcError) as caught:
        future.result()
    assert caught.value.code() == grpc.StatusCode.CANCELLED
    assert not is_transient(caught.value)
