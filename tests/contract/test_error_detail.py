"""A backend's own error text stays in the server's log, never in the caller's answer.

The database's and the blob store's messages name hosts, ports, databases
and SQL; the edge (services/common/status.py) answers each category with a
fixed message and its code, and logs the detail. Here real asyncpg errors
(a statement timeout from a real PostgreSQL, a refused connection) and one
forced with a host name in it are raised inside a handler on a real
grpc.aio server behind the edge.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import grpc
import pytest

from depot.services.common import serving
from depot.services.common.interceptor import Open

SERVICE = "depot.contract.v1.FailingService"
SECRET_HOST = "db-primary.internal.example"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def failing(database_url: str) -> AsyncIterator[str]:
    """A server whose methods each fail with a real backend error."""
    port = _closed_port()

    async def statement_timeout() -> None:
        conn = await asyncpg.connect(database_url)
        try:
            await conn.execute("SET statement_timeout = '10ms'")
            await conn.execute("SELECT pg_sleep(2)")
        finally:
            await conn.close()

    async def refused() -> None:
        await asyncpg.connect(f"postgresql://depot@127.0.0.1:{port}/depot", timeout=5)

    async def forced() -> None:
        raise asyncpg.ConnectionFailureError(f'could not connect to "{SECRET_HOST}" (10.1.2.3), port 5432')

    failures: dict[str, Callable[[], Awaitable[None]]] = {
        "StatementTimeout": statement_timeout,
        "Refused": refused,
        "Forced": forced,
    }

    def handler(fail: Callable[[], Awaitable[None]]) -> grpc.RpcMethodHandler[bytes, bytes]:
        async def call(request: bytes, context: object) -> bytes:
            await fail()
            return b""

        return grpc.unary_unary_rpc_method_handler(call)

    server = serving.new_server({SERVICE: Open()})
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(SERVICE, {k: handler(f) for k, f in failures.items()}),)
    )
    bound = serving.bind(server, "127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{bound}"
    finally:
        await server.stop(0)


async def _fail(address: str, method: str) -> grpc.aio.AioRpcError:
    async with grpc.aio.insecure_channel(address) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await channel.unary_unary(f"/{SERVICE}/{method}")(b"", timeout=10)
    return e.value


def _answer(e: grpc.aio.AioRpcError) -> str:
    """Everything the caller gets back as text: the message and every trailer."""
    trailers = b"".join(v if isinstance(v, bytes) else v.encode() for _, v in e.trailing_metadata() or ())
    return (e.details() or "") + trailers.decode("utf-8", "replace")


async def test_a_real_statement_timeout_keeps_its_code_and_not_its_text(failing: str) -> None:
    e = await _fail(failing, "StatementTimeout")
    assert e.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert e.details() == "the database statement ran past its statement timeout"
    assert "canceling statement" not in _answer(e)


async def test_a_refused_connection_does_not_name_the_host_and_port(failing: str) -> None:
    e = await _fail(failing, "Refused")
    assert e.code() == grpc.StatusCode.UNAVAILABLE
    assert e.details() == "backend unavailable"
    assert "127.0.0.1" not in _answer(e)


async def test_a_database_error_naming_its_host_is_logged_not_answered(
    failing: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="depot.services.common.status"):
        e = await _fail(failing, "Forced")
    assert e.code() == grpc.StatusCode.UNAVAILABLE
    assert e.details() == "database unavailable"
    assert SECRET_HOST not in _answer(e) and "10.1.2.3" not in _answer(e)
    # ...while the operator finds it in the log.
    assert SECRET_HOST in caplog.text
