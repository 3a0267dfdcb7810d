"""OpenTelemetry for the services: a span and a latency metric for every RPC.

``setup()`` installs the SDK's TracerProvider, and servers get the tracing
interceptor, when spans have somewhere to go (a ``TelemetryConfig``): an
OTLP collector when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set (and the OTLP
exporter package is installed), or stderr with ``DEPOT_TRACE_CONSOLE=1``. Otherwise tracing is
off: spans nobody exports cost about 5% of the server's CPU on the commit
path, and the interceptor alone about 15% of alias-resolution throughput
(bench/metadata.py). Log records carry the current trace id so logs and
traces can be joined.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar, cast

import grpc
from opentelemetry import metrics, trace

from .config import TelemetryConfig

tracer = trace.get_tracer("depot.services")
# Whether RPCs are traced: set by setup() when an exporter is configured.
enabled = False
_meter = metrics.get_meter("depot.services")
rpc_latency = _meter.create_histogram("depot.rpc.duration", unit="ms", description="RPC latency")


class _TraceIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        ctx = trace.get_current_span().get_span_context()
        record.trace_id = f"{ctx.trace_id:032x}" if ctx.is_valid else "-"
        return True


def setup(service_name: str, config: TelemetryConfig) -> None:
    """Installs the tracer provider and the trace-id log filter (call once in __main__)."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

    exporters: list[SpanExporter] = []
    if config.otlp_endpoint:
        try:
            # An optional package, not a dependency: mypy may not find it.
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # type: ignore[import-not-found, unused-ignore]
                OTLPSpanExporter,
            )

            exporters.append(OTLPSpanExporter(endpoint=config.otlp_endpoint))
        except ImportError:
            logging.warning("OTEL_EXPORTER_OTLP_ENDPOINT set but opentelemetry-exporter-otlp missing")
    if config.trace_console:
        exporters.append(ConsoleSpanExporter())
    if exporters:
        provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
        for exporter in exporters:
            provider.add_span_processor(BatchSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        global enabled
        enabled = True
    for handler in logging.getLogger().handlers:
        handler.addFilter(_TraceIdFilter())
        if config.json_logs:
            handler.setFormatter(_JsonFormatter())


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s trace=%(trace_id)s %(message)s"


class _JsonFormatter(logging.Formatter):
    """One JSON object per line (DEPOT_LOG_FORMAT=json), for log collectors in a cluster."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "trace_id": getattr(record, "trace_id", "-"),
            "message": record.getMessage(),
        }
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out)


def server_interceptors() -> list[grpc.aio.ServerInterceptor]:
    return [TracingInterceptor()] if enabled else []


_Req = TypeVar("_Req")
_Resp = TypeVar("_Resp")
# What grpc.aio keeps in a handler: coroutine functions taking the aio context.
# The stubs type RpcMethodHandler's fields as the sync API's (Iterator,
# grpc.ServicerContext), hence the casts where the handler is unwrapped.
_Unary = Callable[[Any, grpc.aio.ServicerContext[_Req, _Resp]], Awaitable[_Resp]]
_Streaming = Callable[[Any, grpc.aio.ServicerContext[_Req, _Resp]], AsyncIterator[_Resp]]


class TracingInterceptor(grpc.aio.ServerInterceptor):
    """Wraps every handler in a span named after the RPC and records its latency."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[_Req, _Resp] | None]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[_Req, _Resp] | None:
        handler = await continuation(details)
        if handler is None:
            return handler
        method = details.method
        attrs = {"rpc.system": "grpc", "rpc.method": method}

        if handler.unary_unary or handler.stream_unary:
            inner = cast("_Unary[_Req, _Resp]", handler.unary_unary or handler.stream_unary)

            # The request is a message, or an async iterator of them (stream_unary).
            async def unary(request: Any, context: grpc.aio.ServicerContext[_Req, _Resp]) -> _Resp:
                start = time.perf_counter()
                with tracer.start_as_current_span(method, attributes=attrs):
                    try:
                        return await inner(request, context)
                    finally:
                        rpc_latency.record((time.perf_counter() - start) * 1000, attrs)

            factory = (
                grpc.unary_unary_rpc_method_handler if handler.unary_unary else grpc.stream_unary_rpc_method_handler
            )
            return factory(
                unary,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )

        inner_stream = cast("_Streaming[_Req, _Resp]", handler.unary_stream or handler.stream_stream)

        async def streaming(request: Any, context: grpc.aio.ServicerContext[_Req, _Resp]) -> AsyncIterator[_Resp]:
            start = time.perf_counter()
            with tracer.start_as_current_span(method, attributes=attrs):
                try:
                    async for item in inner_stream(request, context):
                        yield item
                finally:
                    rpc_latency.record((time.perf_counter() - start) * 1000, attrs)

        factory = (
            grpc.unary_stream_rpc_method_handler if handler.unary_stream else grpc.stream_stream_rpc_method_handler
        )
        return factory(
            streaming,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
