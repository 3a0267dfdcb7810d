"""The RPC latency histogram: ``rpc.server.duration`` for every call a server answers.

opentelemetry-instrumentation-grpc traces RPCs but records no metrics, so
this interceptor does, with the attributes of OpenTelemetry's RPC semantic
conventions (``rpc.system``, ``rpc.service``, ``rpc.method``,
``rpc.grpc.status_code``): a p99 and an error ratio per method come from the
one histogram. ``telemetry.server_interceptors`` installs it only when a
metrics exporter is configured.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeAlias, TypeVar

import grpc
from opentelemetry import metrics

_Req = TypeVar("_Req")
_Resp = TypeVar("_Resp")
Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]
_Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"


class RpcMetrics(grpc.aio.ServerInterceptor):
    """Times each call from its handler's start to its last message, by method and status."""

    def __init__(self, meter: metrics.Meter):
        self._duration = meter.create_histogram(
            "rpc.server.duration", unit="ms", description="Time to answer an RPC, by method and gRPC status"
        )
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
        wrapped = self._wrap(handler, method)
        self._wrapped[method] = (handler, wrapped)
        return wrapped

    def _wrap(self, handler: _Handler, method: str) -> _Handler:
        # "/depot.metadata.v1.ArtifactService/CreateRun"
        _, service, name = method.split("/", 2)
        base = {"rpc.system": "grpc", "rpc.service": service, "rpc.method": name}
        by_code: dict[int, dict[str, Any]] = {}
        record = self._duration.record

        def done(start: float, context: Context, failed: bool) -> None:
            code = context.code()
            if not isinstance(code, grpc.StatusCode):
                code = grpc.StatusCode.UNKNOWN if failed else grpc.StatusCode.OK
            number = code.value[0]
            attrs = by_code.get(number)
            if attrs is None:
                attrs = by_code[number] = {**base, "rpc.grpc.status_code": number}
            record((time.perf_counter() - start) * 1000, attrs)

        deserializer, serializer = handler.request_deserializer, handler.response_serializer
        unary: Callable[..., Any] | None = handler.unary_unary or handler.stream_unary
        if unary is not None:
            inner = unary

            async def answer(request: Any, context: Context) -> Any:
                start, failed = time.perf_counter(), True
                try:
                    response = await inner(request, context)
                    failed = False
                    return response
                finally:
                    done(start, context, failed)

            make = grpc.unary_unary_rpc_method_handler if handler.unary_unary else grpc.stream_unary_rpc_method_handler
            return make(answer, deserializer, serializer)

        streaming: Callable[..., Any] | None = handler.unary_stream or handler.stream_stream
        assert streaming is not None, "a handler has one of the four kinds"
        inner_stream = streaming

        async def stream(request: Any, context: Context) -> AsyncIterator[Any]:
            start, failed = time.perf_counter(), True
            try:
                async for item in inner_stream(request, context):
                    yield item
                failed = False
            finally:
                done(start, context, failed)

        make_stream = (
            grpc.unary_stream_rpc_method_handler if handler.unary_stream else grpc.stream_stream_rpc_method_handler
        )
        return make_stream(stream, deserializer, serializer)
