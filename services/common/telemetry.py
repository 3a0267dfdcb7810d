"""OpenTelemetry for the services: traces, metrics and trace-stamped logs, off unless exported.

``setup()`` reads only the standard ``OTEL_*`` variables (``TelemetryConfig``):
``OTEL_TRACES_EXPORTER`` / ``OTEL_METRICS_EXPORTER`` (``otlp``, ``console``,
``none``; ``otlp`` by default once ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set),
``OTEL_SERVICE_NAME``, and whatever the OTLP exporter and SDK read themselves
(endpoint, headers, ``OTEL_BSP_*``, ``OTEL_METRIC_EXPORT_INTERVAL``...).

With an exporter, traces join up across processes: the maintained
``opentelemetry-instrumentation-grpc`` interceptors read the caller's W3C
``traceparent`` on every server and write it on every service-to-service
channel, and ``opentelemetry-instrumentation-asyncpg`` adds a span per SQL
statement. Without one nothing is installed: no interceptor, no patched
asyncpg, and the module-level tracer and meters stay OpenTelemetry's no-op
API (spans nobody exports cost about 5% of the server's CPU on the commit
path: bench/rpc_overhead.py measures what is left).

Logs carry ``trace_id`` and ``span_id`` (``LOG_FORMAT``, or the JSON lines
of ``DEPOT_LOG_FORMAT=json``), so a log line finds its trace.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from typing import Any

import grpc
from opentelemetry import metrics, trace

# The cache hook lives in a grpc-free module so that domain code (metadata's
# access.py through caching.py) may count without importing grpc.
from .cache_metrics import CacheCounter as CacheCounter
from .cache_metrics import cache_counter as cache_counter
from .config import TelemetryConfig
from .otel_loop import LoopLag
from .otel_rpc import RpcMetrics

# Child spans of the services' long steps; a no-op until setup() installs a provider.
tracer = trace.get_tracer("depot.services")
# Where the RPC interceptors and SQL spans report: None (off) until setup() or use().
_tracer_provider: trace.TracerProvider | None = None
_meter_provider: metrics.MeterProvider | None = None


def setup(service_name: str, config: TelemetryConfig) -> None:
    """Installs the providers, the SQL instrumentation and the log stamp (call once in __main__).

    ``service_name`` is the default ``service.name``; ``OTEL_SERVICE_NAME``
    (and ``OTEL_RESOURCE_ATTRIBUTES``) win over it.
    """
    from opentelemetry.sdk.resources import Resource

    defaults = {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": service_name}
    resource = Resource.create(defaults)
    tracer_provider = meter_provider = None
    if config.traces:
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        tracer_provider = TracerProvider(resource=resource, sampler=sampler(os.environ))
        for span_exporter in _span_exporters(config.traces):
            tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter))
        # Global too: the long steps' child spans (``tracer``, the GC's) use the API's provider.
        trace.set_tracer_provider(tracer_provider)
    if config.metrics:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

        readers = [PeriodicExportingMetricReader(e) for e in _metric_exporters(config.metrics)]
        meter_provider = MeterProvider(resource=resource, metric_readers=readers)
        metrics.set_meter_provider(meter_provider)
    use(tracer_provider, meter_provider)
    stamp_logs(json_lines=config.json_logs)


def sampler(env: Mapping[str, str]) -> Any:
    """The operator's sampling decision, applied whatever the caller's ``traceparent`` asks.

    OpenTelemetry's default follows the incoming sampled flag, so any caller
    (authenticated or not: the interceptor runs before the edge) could force
    every one of its requests to be traced, SQL spans included, or switch
    tracing off. Here a remote parent only gives the trace id: the decision
    is ``OTEL_TRACES_SAMPLER`` / ``_ARG``'s (always_on, always_off or a
    trace-id ratio, with or without ``parentbased_``). A ratio decides by
    trace id, so every service takes the same decision for one trace and
    sampled traces stay whole; spans inside one service follow their parent.
    """
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased, TraceIdRatioBased

    name = env.get("OTEL_TRACES_SAMPLER", "parentbased_always_on").strip().lower().removeprefix("parentbased_")
    root: Any
    if name == "always_on":
        root = ALWAYS_ON
    elif name == "always_off":
        root = ALWAYS_OFF
    elif name == "traceidratio":
        arg = env.get("OTEL_TRACES_SAMPLER_ARG", "1.0")
        try:
            ratio = float(arg)
        except ValueError:
            ratio = -1.0
        if not 0.0 <= ratio <= 1.0:
            raise ValueError(f"OTEL_TRACES_SAMPLER_ARG must be a ratio from 0 to 1, not {arg!r}")
        root = TraceIdRatioBased(ratio)
    else:
        raise ValueError(
            f"OTEL_TRACES_SAMPLER={env['OTEL_TRACES_SAMPLER']!r}: Depot's services take always_on, always_off "
            "or traceidratio (each also with parentbased_)"
        )
    return ParentBased(root, remote_parent_sampled=root, remote_parent_not_sampled=root)


def use(tracer_provider: trace.TracerProvider | None, meter_provider: metrics.MeterProvider | None) -> None:
    """Where servers and channels built from now on report (None: nowhere, at no cost).

    ``setup()`` passes the providers it installed; tests pass their in-memory
    ones and then ``use(None, None)``. Spans of SQL statements come with a
    tracer provider (asyncpg's methods are wrapped process-wide, until the next
    ``use`` without one).
    """
    global _tracer_provider, _meter_provider
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

    # The instrumentations' functions carry no annotations, hence the ignores here and below.
    sql = AsyncPGInstrumentor()  # type: ignore[no-untyped-call]
    if sql.is_instrumented_by_opentelemetry:
        sql.uninstrument()
    if tracer_provider is not None:
        sql.instrument(tracer_provider=tracer_provider)
    _tracer_provider, _meter_provider = tracer_provider, meter_provider


def _span_exporters(names: tuple[str, ...]) -> list[Any]:
    out: list[Any] = []
    for name in names:
        if name == "otlp":
            # Endpoint, headers, TLS and timeout: the exporter reads OTEL_EXPORTER_OTLP_* itself.
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

            out.append(OTLPSpanExporter())
        else:
            from opentelemetry.sdk.trace.export import ConsoleSpanExporter

            out.append(ConsoleSpanExporter())
    return out


def _metric_exporters(names: tuple[str, ...]) -> list[Any]:
    out: list[Any] = []
    for name in names:
        if name == "otlp":
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

            out.append(OTLPMetricExporter())
        else:
            from opentelemetry.sdk.metrics.export import ConsoleMetricExporter

            out.append(ConsoleMetricExporter())
    return out


def server_interceptors() -> list[grpc.aio.ServerInterceptor]:
    """What ``serving.new_server`` puts outside the edge: nothing without an exporter.

    Outside, so the span is current while the edge logs and maps an error,
    and sees the status the edge's abort sets (span status and
    ``rpc.grpc.status_code``). Health probes are not traced.
    """
    out: list[grpc.aio.ServerInterceptor] = []
    if _tracer_provider is not None:
        from opentelemetry.instrumentation.grpc import aio_server_interceptor, filters

        health = filters.negate(filters.health_check())
        out.append(aio_server_interceptor(tracer_provider=_tracer_provider, filter_=health))  # type: ignore[no-untyped-call]
    if _meter_provider is not None:
        out.append(RpcMetrics(_meter_provider.get_meter("depot.services.rpc")))
    return out


def loop_lag() -> LoopLag | None:
    """The event-loop lag probe for a server about to start: None without a metrics exporter."""
    if _meter_provider is None:
        return None
    return LoopLag(_meter_provider.get_meter("depot.services.loop"))


def client_interceptors() -> list[grpc.aio.ClientInterceptor]:
    """For a channel from one service to another: a client span and the ``traceparent`` it sends."""
    if _tracer_provider is None:
        return []
    from opentelemetry.instrumentation.grpc import aio_client_interceptors

    interceptors: list[grpc.aio.ClientInterceptor] = aio_client_interceptors(  # type: ignore[no-untyped-call]
        tracer_provider=_tracer_provider
    )
    return interceptors


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s trace=%(trace_id)s span=%(span_id)s %(message)s"


class TraceContextFilter(logging.Filter):
    """Stamps each record with the current span's ids ("-" outside a span)."""

    def filter(self, record: logging.LogRecord) -> bool:
        ctx = trace.get_current_span().get_span_context()
        if ctx.is_valid:
            record.trace_id = f"{ctx.trace_id:032x}"
            record.span_id = f"{ctx.span_id:016x}"
        else:
            record.trace_id = record.span_id = "-"
        return True


def stamp_logs(*, json_lines: bool = False) -> None:
    """Puts the trace stamp (and, for ``json_lines``, the JSON formatter) on the root logger's handlers."""
    for handler in logging.getLogger().handlers:
        handler.addFilter(TraceContextFilter())
        if json_lines:
            handler.setFormatter(JsonFormatter())


class JsonFormatter(logging.Formatter):
    """One JSON object per line (DEPOT_LOG_FORMAT=json), for log collectors in a cluster."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "trace_id": getattr(record, "trace_id", "-"),
            "span_id": getattr(record, "span_id", "-"),
            "message": record.getMessage(),
        }
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out)
