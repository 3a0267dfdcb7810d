"""The SDK's streaming calls carry the caller's trace, as its unary calls do.

The SDK joins a user's trace through the process's global tracer provider
(what a training script sets), so each test installs one for its duration
and puts it back after; the all-in-one server in this process reports to
the same in-memory exporter (``telemetry.use``). A call joined the trace
when the server's span of it has the caller's trace id, under the SDK's
client span of that call.

Call kinds: ReadManifest, ReadBlob and ResolveReferences stream answers
(unary-stream); UploadBlob and CreateManifest stream requests
(stream-unary); the SDK has no bidirectional call.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import grpc
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from opentelemetry.util._once import Once
from support.entities import create_team
from support.servers import ServerThread, make_config

import depot
from depot._manifest_read import iter_entries
from depot.common.v1 import common_pb2
from depot.manifest.v1 import manifest_pb2 as mpb
from depot.services.common import telemetry

SERVICE = "/depot.manifest.v1.ManifestService/"
READ_MANIFEST = SERVICE + "ReadManifest"
READ_BLOB = SERVICE + "ReadBlob"
UPLOAD_BLOB = SERVICE + "UploadBlob"
RESOLVE = SERVICE + "ResolveReferences"
# Past the SDK's batch limit: this file travels in a ReadBlob / UploadBlob stream of its own.
BIG = 2_000_000


@dataclass
class Traced:
    server: ServerThread
    spans: InMemorySpanExporter
    bucket: str
    s3_endpoint: str

    def finished(self, *names: str) -> list[ReadableSpan]:
        """The spans ended so far, once those named have a server span: a server
        span ends just after its status went out, so the caller may see it first."""
        deadline = time.monotonic() + 10
        while True:
            spans = list(self.spans.get_finished_spans())
            served = {s.name for s in spans if s.kind == SpanKind.SERVER}
            if not set(names) - served or time.monotonic() > deadline:
                return spans
            time.sleep(0.01)

    def log(self, art: depot.Artifact) -> depot.Artifact:
        with depot.init(entity="team", project="p", address=self.server.address, api_key=self.server.admin_key) as run:
            return run.log_artifact(art).wait()

    def fetch(self, name: str) -> depot.Artifact:
        """The logged version as a reader sees it: its entries stream from the server."""
        return depot.Api(self.server.address, self.server.admin_key).artifact(f"team/p/{name}:latest")


def _set_global_tracer_provider(provider: TracerProvider | None) -> None:
    # The API sets its global provider once per process; the SDK reads that
    # global, so the test installs its own and takes it away again, as
    # OpenTelemetry's own test helpers do (reset_trace_globals), so that the
    # tests after it in this worker see a process without tracing.
    trace._TRACER_PROVIDER_SET_ONCE = Once()  # type: ignore[attr-defined]
    trace._TRACER_PROVIDER = None  # type: ignore[attr-defined]
    if provider is not None:
        trace.set_tracer_provider(provider)


@pytest.fixture
def traced(tmp_path: Path, database_url: str, s3_endpoint: str, s3_bucket: str) -> Iterator[Traced]:
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    telemetry.use(provider, None)
    _set_global_tracer_provider(provider)
    try:
        cfg = make_config(
            tmp_path / "depot-data",
            database_url,
            (tmp_path / "blobs").as_uri(),
            DEPOT_S3_ENDPOINT_URL=s3_endpoint,
            DEPOT_REFERENCE_BUCKETS=s3_bucket,
        )
        server = ServerThread(cfg).start()
        try:
            create_team(server.address, server.admin_key, "team")
            yield Traced(server, spans, s3_bucket, s3_endpoint)
        finally:
            server.stop()
    finally:
        _set_global_tracer_provider(None)
        telemetry.use(None, None)


def _with_big_file(name: str) -> depot.Artifact:
    art = depot.Artifact(name, type="model")
    with art.new_file("weights.bin", mode="wb") as f:
        f.write(os.urandom(BIG))
    with art.new_file("README.md") as f:
        f.write("small: rides inline")
    return art


def _assert_joined(spans: list[ReadableSpan], caller: trace.SpanContext, *names: str) -> None:
    """Each call named was served in the caller's trace, under the SDK's client span of it."""
    by_id = {s.context.span_id: s for s in spans}
    for name in names:
        served = [s for s in spans if s.name == name and s.kind == SpanKind.SERVER]
        assert served, (name, sorted({s.name for s in spans}))
        for server_span in served:
            assert server_span.context.trace_id == caller.trace_id, name
            assert server_span.parent is not None and server_span.parent.is_remote, name
            client = by_id[server_span.parent.span_id]
            assert (client.name, client.kind) == (name, SpanKind.CLIENT)
            assert client.parent is not None and client.parent.span_id == caller.span_id, name


def test_a_manifest_read_and_a_blob_download_join_the_callers_trace(traced: Traced, tmp_path: Path) -> None:
    traced.log(_with_big_file("reads"))
    logged = traced.fetch("reads")
    traced.spans.clear()
    with trace.get_tracer("test").start_as_current_span("evaluate") as span:
        assert [e.path for e in logged.files()] == ["README.md", "weights.bin"]
        # The big file is fetched by one of the download's worker threads.
        out = logged.download(root=tmp_path / "out")
    assert (out / "weights.bin").stat().st_size == BIG
    _assert_joined(traced.finished(READ_MANIFEST, READ_BLOB), span.get_span_context(), READ_MANIFEST, READ_BLOB)


def test_an_upload_past_the_batch_limit_joins_the_callers_trace(traced: Traced) -> None:
    with trace.get_tracer("test").start_as_current_span("log-checkpoint") as span:
        traced.log(_with_big_file("upload"))
    _assert_joined(traced.finished(UPLOAD_BLOB), span.get_span_context(), UPLOAD_BLOB)


def test_a_reference_listing_joins_the_callers_trace(traced: Traced) -> None:
    s3 = boto3.client("s3", endpoint_url=traced.s3_endpoint)
    for key in ("data/a.txt", "data/b.txt"):
        s3.put_object(Bucket=traced.bucket, Key=key, Body=key.encode())
    with trace.get_tracer("test").start_as_current_span("log-dataset") as span:
        art = depot.Artifact("refs", type="dataset")
        art.add_reference(f"s3://{traced.bucket}/data")
        logged = traced.log(art)
    assert [e.path for e in logged.files()] == ["a.txt", "b.txt"]
    _assert_joined(traced.finished(RESOLVE), span.get_span_context(), RESOLVE)


def test_without_a_tracer_provider_a_stream_carries_no_trace(traced: Traced) -> None:
    traced.log(_with_big_file("untraced"))
    logged = traced.fetch("untraced")
    _set_global_tracer_provider(None)
    traced.spans.clear()
    with trace.get_tracer("test").start_as_current_span("not recorded"):
        assert len(list(logged.files())) == 2
    spans = traced.finished(READ_MANIFEST)
    # The server still traces (it has its own provider), but as a trace of its own:
    # no traceparent came, and the SDK made no client span.
    [read] = [s for s in spans if s.name == READ_MANIFEST]
    assert read.kind == SpanKind.SERVER and read.parent is None


def test_a_failed_stream_is_an_error_on_its_client_span(traced: Traced) -> None:
    client = depot.Client(traced.server.address, traced.server.admin_key, retries=0)
    try:
        with pytest.raises(depot.NotFoundError), trace.get_tracer("test").start_as_current_span("read"):
            list(iter_entries(client, "team", "0" * 64))
    finally:
        client.close()
    spans = traced.finished(READ_MANIFEST)
    [sent] = [s for s in spans if s.name == READ_MANIFEST and s.kind == SpanKind.CLIENT]
    assert sent.status.status_code == StatusCode.ERROR
    assert (sent.attributes or {})["rpc.grpc.status_code"] == grpc.StatusCode.NOT_FOUND.value[0]


def _references_manifest(client: depot.Client, n: int) -> str:
    """A stored manifest of ``n`` references with long random paths: megabytes no compression shrinks,
    past what gRPC's flow control lets the server send before the reader takes it."""
    base = "https://example.invalid/"

    def requests() -> Iterator[mpb.CreateManifestRequest]:
        yield mpb.CreateManifestRequest(header=mpb.ManifestHeader(entity="team", digest_algorithm="md5"))
        names = [f"{i:06d}-{os.urandom(64).hex()}" for i in range(n)]
        for start in range(0, n, 10_000):  # messages under gRPC's 16 MiB limit
            entries = [
                mpb.ManifestEntry(path=f"d/{name}", algorithm="none", digest=base + name, ref=base + name)
                for name in names[start : start + 10_000]
            ]
            yield mpb.CreateManifestRequest(batch=mpb.EntryBatch(entries=entries))

    ref: common_pb2.ManifestRef = client.upload(client.manifest.CreateManifest, requests)
    return ref.manifest_id


def test_a_stream_the_caller_stops_early_is_cancelled_without_an_error(traced: Traced) -> None:
    client = depot.Client(traced.server.address, traced.server.admin_key)
    try:
        manifest_id = _references_manifest(client, 50_000)
        traced.spans.clear()
        with trace.get_tracer("test").start_as_current_span("peek") as span:
            entries = iter_entries(client, "team", manifest_id, batch=10)
            assert len(next(entries)) == 10
            entries.close()  # cancels the stream, most of it unsent
    finally:
        client.close()
    spans = traced.finished(READ_MANIFEST)
    _assert_joined(spans, span.get_span_context(), READ_MANIFEST)
    [sent] = [s for s in spans if s.name == READ_MANIFEST and s.kind == SpanKind.CLIENT]
    assert (sent.attributes or {})["rpc.grpc.status_code"] == grpc.StatusCode.CANCELLED.value[0]
    assert sent.status.status_code == StatusCode.UNSET
