"""Undecodable requests answer INVALID_ARGUMENT, not UNKNOWN.

grpc calls a method's request deserializer before any handler (and so before
authentication) runs; a ``DecodeError`` there — garbage bytes, invalid UTF-8
in a string field — surfaced as ``UNKNOWN "Unexpected DecodeError"``. The
interceptor here wraps every method's deserializer so that a request that
does not parse becomes a :class:`_Undecodable` marker, and wraps the handler
so that the marker aborts with ``INVALID_ARGUMENT`` and the same ErrorInfo
trailer as every other error (``status.py``).

Nothing else is checked here, before authentication and for every call:
walking a parsed request's strings for NUL cost a 1000-entry PutManifest
30x its decode time and let an unauthenticated 2 MB request stall the event
loop for over a second. NUL and other characters PostgreSQL cannot store
are refused where fields are known (``validate.py``) and, for any string
that still reaches the database, where errors become statuses
(``status.py``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from . import errors

# status.py's own abort, so the trailer is the one every other error carries.
from .status import _abort as abort_with


class _Undecodable:
    """What the wrapped deserializer returns for a request it refused."""

    __slots__ = ("error",)

    def __init__(self, error: errors.InvalidArgument):
        self.error = error


def _checked(deserializer: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    def deserialize(data: bytes) -> Any:
        try:
            return deserializer(data)
        except DecodeError as e:
            return _Undecodable(errors.InvalidArgument(f"the request is not a valid message of this RPC: {e}"))
        except Exception:  # noqa: BLE001 - any parser failure is the caller's bytes
            return _Undecodable(errors.InvalidArgument("the request is not a valid message of this RPC"))

    return deserialize


async def _refuse(request: Any, context: grpc.aio.ServicerContext) -> None:
    if isinstance(request, _Undecodable):
        await abort_with(context, request.error)


async def _checked_stream(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
    async for request in requests:
        await _refuse(request, context)
        yield request


class DecodingInterceptor(grpc.aio.ServerInterceptor):
    """Turns undecodable requests into INVALID_ARGUMENT for every method."""

    def __init__(self) -> None:
        # A method's handler is registered once, so its wrapper is built once
        # and not on every call of the commit path.
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None or handler.request_deserializer is None:
            return handler
        hit = self._wrapped.get(details.method)
        if hit is not None and hit[0] is handler:
            return hit[1]
        wrapped = _wrap(handler)
        self._wrapped[details.method] = (handler, wrapped)
        return wrapped


def _wrap(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    """The handler with its deserializer checked and the refusal raised first."""
    deserializer = _checked(handler.request_deserializer)
    serializer = handler.response_serializer

    if handler.unary_unary:
        inner_uu = handler.unary_unary

        async def unary_unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            await _refuse(request, context)
            return await inner_uu(request, context)

        return grpc.unary_unary_rpc_method_handler(unary_unary, deserializer, serializer)

    if handler.unary_stream:
        inner_us = handler.unary_stream

        async def unary_stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            await _refuse(request, context)
            async for item in inner_us(request, context):
                yield item

        return grpc.unary_stream_rpc_method_handler(unary_stream, deserializer, serializer)

    if handler.stream_unary:
        inner_su = handler.stream_unary

        async def stream_unary(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> Any:
            return await inner_su(_checked_stream(requests, context), context)

        return grpc.stream_unary_rpc_method_handler(stream_unary, deserializer, serializer)

    inner_ss = handler.stream_stream

    async def stream_stream(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        async for item in inner_ss(_checked_stream(requests, context), context):
            yield item

    return grpc.stream_stream_rpc_method_handler(stream_stream, deserializer, serializer)


def server_interceptors() -> list[grpc.aio.ServerInterceptor]:
    return [DecodingInterceptor()]
