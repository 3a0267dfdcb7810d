"""One trace from an SDK call to a SQL statement, across separate processes.

The metadata and manifest services run as ``python -m depot.services.<svc>
serve`` processes and the SDK call in a process of its own, each exporting
over OTLP, configured by the standard OTEL_* variables only, to a collector
this test serves (the OTLP gRPC services, on port 0). The SDK process sets
a tracer provider, as a user's training script would, and uploads a blob
under its own span; the test then follows the parent links from asyncpg's
SQL span in the metadata process back to that span.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status
from support.entities import create_team
from support.servers import free_port, wait_healthy

pytestmark = pytest.mark.slow


@dataclass
class Collected:
    """What the processes exported: spans with their service.name, metric names by service."""

    spans: list[tuple[str, Span]] = field(default_factory=list)
    metrics: dict[str, set[str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _service(resource: Any) -> str:
    return next((a.value.string_value for a in resource.attributes if a.key == "service.name"), "?")


class _Traces(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, out: Collected):
        self._out = out

    def Export(self, request: Any, context: Any) -> Any:  # noqa: N802 - the OTLP method's name
        with self._out.lock:
            for rs in request.resource_spans:
                for ss in rs.scope_spans:
                    self._out.spans.extend((_service(rs.resource), s) for s in ss.spans)
        return trace_service_pb2.ExportTraceServiceResponse()


class _Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self, out: Collected):
        self._out = out

    def Export(self, request: Any, context: Any) -> Any:  # noqa: N802
        with self._out.lock:
            for rm in request.resource_metrics:
                names = self._out.metrics.setdefault(_service(rm.resource), set())
                names.update(m.name for sm in rm.scope_metrics for m in sm.metrics)
        return metrics_service_pb2.ExportMetricsServiceResponse()


@pytest.fixture
def collector() -> Iterator[tuple[str, Collected]]:
    out = Collected()
    server = grpc.server(futures.ThreadPoolExecutor(4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_Traces(out), server)
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(_Metrics(out), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"http://127.0.0.1:{port}", out
    server.stop(None)


SDK_SCRIPT = textwrap.dedent(
    """
    import base64, os, sys

    import xxhash
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    import depot
    from depot._client import Client
    from depot.manifest.v1 import manifest_pb2 as mpb

    # What a user's script does to trace its work: the SDK needs nothing more.
    provider = TracerProvider(resource=Resource.create({"service.name": "training-script"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)

    metadata, manifest, key = sys.argv[1:4]
    data = os.urandom(1000)
    digest = mpb.BlobDigest(algorithm="xxh3_128", digest=base64.b64encode(xxhash.xxh3_128(data).digest()).decode())

    def requests():
        yield mpb.UploadBlobRequest(header=mpb.UploadBlobHeader(entity="team", digest=digest, size=len(data)))
        yield data

    client = Client(metadata, key, manifest_address=manifest)
    with trace.get_tracer("training").start_as_current_span("log-checkpoint") as span:
        client.upload(client.upload_blob, requests)
        # The public API too, whose uploads run in the SDK's threads.
        os.environ["DEPOT_MANIFEST_ADDRESS"] = manifest
        with depot.init(entity="team", project="p", address=metadata, api_key=key) as run:
            art = depot.Artifact("checkpoint", type="model")
            with art.new_file("weights.bin", mode="wb") as f:
                f.write(os.urandom(2_000_000))  # past the batch limit: an UploadBlob of its own
            run.log_artifact(art).wait()
        print(format(span.get_span_context().trace_id, "032x"), format(span.get_span_context().span_id, "016x"))
    client.close()
    provider.shutdown()
    """
)


def test_one_trace_from_an_sdk_call_to_a_sql_statement(
    collector: tuple[str, Collected], database_url: str, tmp_path: Path
) -> None:
    endpoint, collected = collector
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DEPOT_", "OTEL_"))}
    env.update(
        DEPOT_DATABASE_URL=database_url,
        DEPOT_STORAGE_URL=(tmp_path / "blobs").as_uri(),
        DEPOT_INTERNAL_SECRET="trace-test-secret",
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
        OTEL_EXPORTER_OTLP_INSECURE="true",
        # Export within a fraction of a second rather than every 5 s / 60 s.
        OTEL_BSP_SCHEDULE_DELAY="100",
        OTEL_METRIC_EXPORT_INTERVAL="200",
    )
    run = [sys.executable, "-m"]
    admin_key = subprocess.run(
        [*run, "depot.services.metadata", "bootstrap-admin"],
        env={**env, "OTEL_SDK_DISABLED": "true"},
        check=True,
        timeout=60,
        capture_output=True,
        text=True,
    ).stdout.strip()
    ports = {"metadata": free_port(), "manifest": free_port()}
    env["DEPOT_METADATA_ADDRESS"] = f"127.0.0.1:{ports['metadata']}"
    logs = {name: open(tmp_path / f"{name}.log", "wb") for name in ports}  # noqa: SIM115 - closed below
    procs = {
        name: subprocess.Popen(
            [*run, f"depot.services.{name}", "serve"],
            env={**env, "DEPOT_LISTEN": f"127.0.0.1:{port}"},
            stdout=logs[name],
            stderr=logs[name],
        )
        for name, port in ports.items()
    }
    try:
        deadline = time.monotonic() + 90
        for name, port in ports.items():
            wait_healthy(port, procs[name], deadline)
        create_team(f"127.0.0.1:{ports['metadata']}", admin_key, "team")
        script = tmp_path / "sdk_call.py"
        script.write_text(SDK_SCRIPT)
        done = subprocess.run(
            [sys.executable, str(script), env["DEPOT_METADATA_ADDRESS"], f"127.0.0.1:{ports['manifest']}", admin_key],
            env=env,
            timeout=120,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
        trace_hex, root_hex = done.stdout.split()
    finally:
        for p in procs.values():
            p.terminate()  # SIGTERM: the services stop and flush what they hold
        for p in procs.values():
            p.wait(30)
        for f in logs.values():
            f.close()

    spans = [(svc, s) for svc, s in collected.spans if s.trace_id.hex() == trace_hex]
    by_id = {s.span_id: (svc, s) for svc, s in spans}
    services = {svc for svc, _ in spans}
    assert {"training-script", "depot-manifest", "depot-metadata"} <= services, (services, _logs(tmp_path))

    sql = [(svc, s) for svc, s in spans if any(a.key == "db.system" for a in s.attributes)]
    assert sql and all(svc == "depot-metadata" and s.kind == Span.SPAN_KIND_CLIENT for svc, s in sql)
    # Up from one SQL statement: metadata's CheckAccess, the manifest's call
    # of it, the manifest's UploadBlob, the SDK's call of it, the user's span.
    chain: list[tuple[str, str, int]] = []
    span: Span | None = sql[0][1]
    while span is not None:
        svc, span = by_id.get(span.parent_span_id, ("", None))
        if span is not None:
            chain.append((svc, span.name, span.kind))
    assert chain == [
        ("depot-metadata", "/depot.metadata.v1.AccessService/CheckAccess", Span.SPAN_KIND_SERVER),
        ("depot-manifest", "/depot.metadata.v1.AccessService/CheckAccess", Span.SPAN_KIND_CLIENT),
        ("depot-manifest", "/depot.manifest.v1.ManifestService/UploadBlob", Span.SPAN_KIND_SERVER),
        ("training-script", "/depot.manifest.v1.ManifestService/UploadBlob", Span.SPAN_KIND_CLIENT),
        ("training-script", "log-checkpoint", Span.SPAN_KIND_INTERNAL),
    ], chain
    assert by_id[bytes.fromhex(root_hex)][1].name == "log-checkpoint"
    # The uploads' long step, storing the blob, is a child of the manifest's UploadBlob span.
    stores = [s for _, s in spans if s.name == "blob.store"]
    assert len(stores) == 2
    assert {by_id[s.parent_span_id][1].name for s in stores} == {"/depot.manifest.v1.ManifestService/UploadBlob"}
    # log_artifact's calls, made in the SDK's threads, are in the user's trace too, under its span.
    sdk_calls = {s.name for svc, s in spans if svc == "training-script" and s.kind == Span.SPAN_KIND_CLIENT}
    assert {
        "/depot.metadata.v1.ArtifactService/CreateRun",
        "/depot.metadata.v1.ArtifactService/CreateArtifactVersion",
        "/depot.manifest.v1.ManifestService/PutManifest",
    } <= sdk_calls, sdk_calls
    assert all(s.status.code != Status.STATUS_CODE_ERROR for _, s in spans)

    # Metrics went out over OTLP as well (exported at the latest on shutdown).
    manifest_metrics = {
        "rpc.server.duration",
        "depot.blobs.bytes_hashed",
        "depot.blobs.bytes_stored",
        "depot.cache.lookups",
    }
    assert manifest_metrics <= collected.metrics.get("depot-manifest", set()), collected.metrics
    assert "rpc.server.duration" in collected.metrics.get("depot-metadata", set()), collected.metrics


def _logs(tmp_path: Path) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(tmp_path.glob("*.log")))
