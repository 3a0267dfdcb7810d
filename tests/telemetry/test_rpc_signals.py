"""Spans and metrics of the services' RPCs, on in-memory exporters.

The all-in-one server runs in this process with the test's providers
(``telemetry.use``), so its spans land in an InMemorySpanExporter and its
metrics in an InMemoryMetricReader. The manifest service still calls
metadata's CheckAccess through the port, so the chain caller -> manifest ->
metadata -> SQL crosses a real gRPC hop.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import pytest
from opentelemetry import trace
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from support.entities import create_team
from support.servers import ServerThread, make_config
from support.spans import ancestry, metric_points

from depot.manifest.v1 import manifest_pb2 as mpb
from depot.manifest.v1 import manifest_pb2_grpc
from depot.services.common import telemetry

FIND = "/depot.manifest.v1.ManifestService/FindMissingBlobs"
CHECK = "/depot.metadata.v1.AccessService/CheckAccess"


@dataclass
class Signals:
    server: ServerThread
    spans: InMemorySpanExporter
    metrics: InMemoryMetricReader

    def finished(self, *names: str) -> list[ReadableSpan]:
        """The spans ended so far, once those named have: a server span ends
        just after its status went out, so the caller may see it first."""
        deadline = time.monotonic() + 10
        while True:
            spans = list(self.spans.get_finished_spans())
            if not set(names) - {s.name for s in spans} or time.monotonic() > deadline:
                return spans
            time.sleep(0.01)


@pytest.fixture
def signals(tmp_path, database_url) -> Iterator[Signals]:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    # What setup() does with an exporter configured, with in-memory ones; the server is built after it.
    telemetry.use(tracer_provider, MeterProvider(metric_readers=[reader]))
    try:
        server = ServerThread(make_config(tmp_path / "data", database_url, (tmp_path / "blobs").as_uri())).start()
    except BaseException:
        telemetry.use(None, None)
        raise
    try:
        create_team(server.address, server.admin_key, "team")
        yield Signals(server, spans, reader)
    finally:
        server.stop()
        telemetry.use(None, None)


def _find_missing(server: ServerThread, entity: str, traceparent: str | None = None) -> None:
    metadata = [("authorization", f"Bearer {server.admin_key}")]
    if traceparent:
        metadata.append(("traceparent", traceparent))
    with grpc.insecure_channel(server.address) as channel:
        manifest_pb2_grpc.ManifestServiceStub(channel).FindMissingBlobs(
            mpb.FindMissingBlobsRequest(entity=entity), metadata=metadata, timeout=30
        )


def test_an_incoming_traceparent_is_the_parent_of_the_whole_chain_down_to_sql(signals: Signals) -> None:
    trace_id, parent_id = int.from_bytes(os.urandom(16)), int.from_bytes(os.urandom(8))
    signals.spans.clear()
    _find_missing(signals.server, "team", f"00-{trace_id:032x}-{parent_id:016x}-01")

    # A statement the server runs on its own (a background task's UPDATE) is
    # a trace of its own root: not this call's, and not a broken propagation.
    spans = [s for s in signals.finished(FIND, CHECK) if s.parent is not None or s.name in (FIND, CHECK)]
    assert {s.context.trace_id for s in spans} == {trace_id}
    by_id = {s.context.span_id: s for s in spans}
    find = next(s for s in spans if s.name == FIND)
    assert find.kind == SpanKind.SERVER
    assert find.parent is not None and find.parent.span_id == parent_id and find.parent.is_remote
    assert find.attributes is not None and find.attributes["rpc.grpc.status_code"] == 0
    assert find.status.status_code == StatusCode.UNSET
    # manifest's call to metadata: a client span under the server span, metadata's server span under it...
    check_client = next(s for s in spans if s.name == CHECK and s.kind == SpanKind.CLIENT)
    check_server = next(s for s in spans if s.name == CHECK and s.kind == SpanKind.SERVER)
    assert ancestry(check_server, by_id)[:2] == [check_client, find]
    # ...and metadata's SQL under that: asyncpg's spans, statement included.
    sql = [s for s in spans if (s.attributes or {}).get("db.system") == "postgresql"]
    assert sql, [s.name for s in spans]
    for statement in sql:
        assert statement.kind == SpanKind.CLIENT
        assert check_server in ancestry(statement, by_id)
        assert (statement.attributes or {}).get("db.statement")


def test_a_refused_call_is_an_error_on_the_client_span_and_a_status_code_on_the_server_span(signals: Signals) -> None:
    signals.spans.clear()
    with pytest.raises(grpc.RpcError) as info:
        _find_missing(signals.server, "nobody")
    assert info.value.code() == grpc.StatusCode.NOT_FOUND  # type: ignore[attr-defined]

    spans = signals.finished(FIND, CHECK)
    find = next(s for s in spans if s.name == FIND)
    assert (find.attributes or {})["rpc.grpc.status_code"] == grpc.StatusCode.NOT_FOUND.value[0]
    # A server answering NOT_FOUND did its job (OpenTelemetry's RPC conventions); its caller did not get what it asked.
    assert find.status.status_code == StatusCode.UNSET
    check_client = next(s for s in spans if s.name == CHECK and s.kind == SpanKind.CLIENT)
    assert check_client.status.status_code == StatusCode.ERROR
    assert (check_client.attributes or {})["rpc.grpc.status_code"] == grpc.StatusCode.NOT_FOUND.value[0]


def test_health_probes_are_not_traced(signals: Signals) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    signals.spans.clear()
    with grpc.insecure_channel(signals.server.address) as channel:
        health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=30)
    assert [s.name for s in signals.finished() if "Health" in s.name] == []


def test_rpc_latency_is_a_histogram_by_method_and_status(signals: Signals) -> None:
    _find_missing(signals.server, "team")
    with pytest.raises(grpc.RpcError):
        _find_missing(signals.server, "nobody")

    # The server records an RPC as its handler ends, which may be just after
    # the caller has its answer: wait (boundedly) for both points to land.
    want = {0, grpc.StatusCode.NOT_FOUND.value[0]}
    deadline = time.monotonic() + 10
    while True:
        points = metric_points(signals.metrics, "rpc.server.duration")
        find = {
            p.attributes["rpc.grpc.status_code"]: p for p in points if p.attributes["rpc.method"] == "FindMissingBlobs"
        }
        if set(find) == want or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert set(find) == want
    for point in find.values():
        assert point.attributes["rpc.service"] == "depot.manifest.v1.ManifestService"
        assert point.attributes["rpc.system"] == "grpc"
        assert point.count >= 1 and point.sum > 0
    # The hop to metadata is measured on metadata's side too.
    assert any(p.attributes["rpc.method"] == "CheckAccess" for p in points)


def test_the_cache_hook_counts_hits_misses_and_evictions() -> None:
    reader = InMemoryMetricReader()
    counter = telemetry.cache_counter("test.cache", MeterProvider(metric_readers=[reader]))
    counter.hit()
    counter.hit(2)
    counter.miss()
    counter.evicted(4)
    lookups = {p.attributes["depot.cache.result"]: p.value for p in metric_points(reader, "depot.cache.lookups")}
    assert lookups == {"hit": 3, "miss": 1}
    [evicted] = metric_points(reader, "depot.cache.evictions")
    assert (evicted.attributes["depot.cache"], evicted.value) == ("test.cache", 4)


def test_without_an_exporter_nothing_is_installed() -> None:
    telemetry.use(None, None)
    assert telemetry.server_interceptors() == []
    assert telemetry.client_interceptors() == []
    assert not AsyncPGInstrumentor().is_instrumented_by_opentelemetry


def test_log_records_carry_the_trace_and_span_ids(caplog: pytest.LogCaptureFixture) -> None:
    tracer = TracerProvider().get_tracer("test")
    stamp = telemetry.TraceContextFilter()
    record = logging.LogRecord("depot", logging.INFO, __file__, 1, "outside", None, None)
    stamp.filter(record)
    assert (record.trace_id, record.span_id) == ("-", "-")  # type: ignore[attr-defined]
    with tracer.start_as_current_span("work") as span:
        record = logging.LogRecord("depot", logging.INFO, __file__, 1, "inside", None, None)
        stamp.filter(record)
    ctx = span.get_span_context()
    assert record.trace_id == f"{ctx.trace_id:032x}"  # type: ignore[attr-defined]
    assert record.span_id == f"{ctx.span_id:016x}"  # type: ignore[attr-defined]
    line = telemetry.JsonFormatter().format(record)
    assert f'"span_id": "{ctx.span_id:016x}"' in line
    assert trace.get_current_span() is trace.INVALID_SPAN
