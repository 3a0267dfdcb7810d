"""The edge every call passes, once, before and around its handler.

grpc.aio gives a server interceptor each call's method and handler before
the handler runs; the handler returned here wraps the servicer's:

1. a request that does not parse is refused with INVALID_ARGUMENT
   (decoding.py), before anything else runs for it;
2. the caller is authenticated, failing closed: every service the server
   serves names how in the interceptor's map (see :data:`Gate`); a service
   missing from it is never served, so a service added later is not open
   by default;
3. whatever the handler (or 1 and 2) raises becomes its status with the
   AIP-193 ErrorInfo trailer, in ``status.abort``: the one translation,
   for unary and streaming RPCs alike.

So a handler neither authenticates nor catches: it reads the caller and
raises domain errors. One wrapper per method is built, once (a method's
handler is registered once), not on every call of the commit path.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextvars import ContextVar
from typing import Any, Generic, NoReturn, TypeAlias, TypeVar

import grpc

from . import decoding, status
from .credentials import bearer_from_metadata, parse_api_key
from .errors import Unauthenticated

log = logging.getLogger(__name__)

P = TypeVar("P")
_Req = TypeVar("_Req")
_Resp = TypeVar("_Resp")

# What a grpc.aio handler gets; the request and response types are the generated stubs' business.
Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]
# Not subscriptable at runtime (only in the stubs), hence the string.
_Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"


class Callers(Generic[P]):
    """Who is calling: authenticated by the edge, read by the handlers of the same call.

    Each RPC runs in its own task, and a task has its own copy of the
    context, so the caller set for one call is never another call's.
    """

    def __init__(self, authenticate: Callable[[str], Awaitable[P]]):
        self._authenticate = authenticate
        self._current: ContextVar[P] = ContextVar("depot_caller")

    async def enter(self, metadata: Iterable[tuple[str, str | bytes]] | None) -> None:
        self._current.set(await self._authenticate(bearer_from_metadata(metadata)))

    def get(self) -> P:
        """The caller of the running RPC; LookupError outside one the edge authenticated."""
        return self._current.get()


class HandlerAuthenticates:
    """The gate of a service whose handlers authenticate the caller themselves.

    The manifest service: its answer depends on the entity in the request,
    which the metadata service judges (CheckAccess) with the key. The edge
    still refuses a missing or malformed key, so no handler runs without
    one that could be valid.
    """

    async def enter(self, metadata: Iterable[tuple[str, str | bytes]] | None) -> None:
        parse_api_key(bearer_from_metadata(metadata))


class Open:
    """The gate of a service anyone may call: grpc.health.v1 alone (probes carry no key)."""

    async def enter(self, metadata: Iterable[tuple[str, str | bytes]] | None) -> None:
        return None


class _Refused:
    """The gate of a service missing from the map: no call reaches its handlers."""

    def __init__(self, service: str):
        self._service = service

    async def enter(self, metadata: Iterable[tuple[str, str | bytes]] | None) -> None:
        # The operator's bug, named in the log; the caller learns nothing of it.
        log.error("refused a call to %s: the service has no entry in the edge's map", self._service)
        raise Unauthenticated("this service does not accept calls")


# How the edge admits a service's calls: a Callers (authenticated here),
# HandlerAuthenticates, or Open.
Gate: TypeAlias = "Callers[Any] | HandlerAuthenticates | Open"

HEALTH = "grpc.health.v1.Health"
# The only service served without a key.
OPEN: dict[str, Gate] = {HEALTH: Open()}


class EdgeInterceptor(grpc.aio.ServerInterceptor):
    """Decoding refusals, authentication and error translation for every method."""

    def __init__(self, gates: Mapping[str, Gate]):
        # Full service name ("depot.metadata.v1.ArtifactService") -> its gate.
        self._gates = {**OPEN, **gates}
        self._wrapped: dict[str, tuple[_Handler, _Handler]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[_Req, _Resp] | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[_Req, _Resp] | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method = handler_call_details.method
        hit = self._wrapped.get(method)
        if hit is not None and hit[0] is handler:
            return hit[1]
        # "/depot.metadata.v1.ArtifactService/CreateRun" -> the service's name.
        service = method.split("/")[1]
        wrapped = _wrap(handler, self._gates.get(service) or _Refused(service))
        self._wrapped[method] = (handler, wrapped)
        return wrapped


def _wrap(handler: _Handler, gate: Gate | _Refused) -> _Handler:
    # grpc's stubs describe the sync server's handlers; grpc.aio's are
    # coroutines and async generators, hence the Any-typed behaviours below.
    deserializer = decoding.checked(handler.request_deserializer) if handler.request_deserializer else None
    serializer = handler.response_serializer

    async def enter(request: Any, context: Context) -> None:
        decoding.refuse(request)
        await gate.enter(context.invocation_metadata())

    async def fail(context: Context, exc: Exception) -> NoReturn:
        if isinstance(exc, grpc.aio.AbortError):
            raise exc  # a status the handler chose itself
        await status.abort(context, exc)

    if handler.unary_unary:
        inner_uu: Callable[..., Any] = handler.unary_unary

        async def unary_unary(request: Any, context: Context) -> Any:
            try:
                await enter(request, context)
                return await inner_uu(request, context)
            except Exception as exc:  # noqa: BLE001 - translated, never swallowed
                await fail(context, exc)

        return grpc.unary_unary_rpc_method_handler(unary_unary, deserializer, serializer)

    if handler.unary_stream:
        inner_us: Callable[..., Any] = handler.unary_stream

        async def unary_stream(request: Any, context: Context) -> AsyncIterator[Any]:
            try:
                await enter(request, context)
                async for item in inner_us(request, context):
                    yield item
            except Exception as exc:  # noqa: BLE001
                await fail(context, exc)

        return grpc.unary_stream_rpc_method_handler(unary_stream, deserializer, serializer)

    if handler.stream_unary:
        inner_su: Callable[..., Any] = handler.stream_unary

        async def stream_unary(requests: AsyncIterator[Any], context: Context) -> Any:
            try:
                await gate.enter(context.invocation_metadata())
                return await inner_su(decoding.checked_stream(requests), context)
            except Exception as exc:  # noqa: BLE001
                await fail(context, exc)

        return grpc.stream_unary_rpc_method_handler(stream_unary, deserializer, serializer)

    inner_ss: Callable[..., Any] | None = handler.stream_stream
    assert inner_ss is not None, "a handler has one of the four kinds"

    async def stream_stream(requests: AsyncIterator[Any], context: Context) -> AsyncIterator[Any]:
        try:
            await gate.enter(context.invocation_metadata())
            async for item in inner_ss(decoding.checked_stream(requests), context):
                yield item
        except Exception as exc:  # noqa: BLE001
            await fail(context, exc)

    return grpc.stream_stream_rpc_method_handler(stream_stream, deserializer, serializer)
