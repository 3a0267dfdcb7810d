"""What telemetry costs a cheap RPC: GetArtifactVersion, with and without an exporter.

    python bench/rpc_overhead.py [--calls 2000] [--repeat 3] [--modes off,sdk,otlp]

Starts an all-in-one server (embedded PostgreSQL, one worker) in a
subprocess, logs one small version, then times ``--calls`` sequential
GetArtifactVersion calls from one client, ``--repeat`` times per mode, and
prints one JSON line per run and one with the median:

    {"bench": "rpc_overhead", "mode": "off", "calls": 2000, "us_per_call": ...}

- ``off``: no OTEL_* variable set on the server (no interceptor, no patched
  asyncpg: what every deployment without a collector runs), called on a
  plain channel: the code before OpenTelemetry's instrumentation, which
  installed nothing either without an exporter.
- ``sdk``: the same server, called on the SDK's channel
  (``depot._client._traced``: the instrumentation's client interceptor)
  in a process without a tracer provider: what the SDK's trace
  propagation costs a user who does not trace.
- ``otlp``: a second server exporting traces and metrics over OTLP to a
  sink this bench serves (it drops what it gets), plain channel: the
  price of the signals.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
from _harness import start_allinone

from depot.metadata.v1 import metadata_pb2 as pb
from depot.metadata.v1 import metadata_pb2_grpc


def _sink() -> tuple[grpc.Server, str]:
    """An OTLP endpoint that accepts and drops spans and metrics."""
    from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

    class Traces(trace_service_pb2_grpc.TraceServiceServicer):
        def Export(self, request: Any, context: Any) -> Any:  # noqa: N802
            return trace_service_pb2.ExportTraceServiceResponse()

    class Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):
        def Export(self, request: Any, context: Any) -> Any:  # noqa: N802
            return metrics_service_pb2.ExportMetricsServiceResponse()

    server = grpc.server(futures.ThreadPoolExecutor(2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Traces(), server)
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(Metrics(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, f"http://127.0.0.1:{port}"


def _prepare(address: str, key: str) -> pb.GetArtifactVersionRequest:
    import depot

    md = (("authorization", f"Bearer {key}"),)
    with grpc.insecure_channel(address) as channel:
        metadata_pb2_grpc.AccessServiceStub(channel).CreateEntity(
            pb.CreateEntityRequest(entity_id="bench", entity=pb.Entity(kind="team")), metadata=md
        )
    with depot.init(entity="bench", project="p", address=address, api_key=key) as run:
        art = depot.Artifact("a", type="dataset")
        with art.new_file("a.txt") as f:
            f.write("a")
        run.log_artifact(art, aliases=["prod"]).wait()
    return pb.GetArtifactVersionRequest(name="entities/bench/projects/p/artifacts/a/versions/prod")


def _time_calls(address: str, key: str, request: pb.GetArtifactVersionRequest, calls: int, sdk: bool) -> float:
    from depot._client import _traced

    md = (("authorization", f"Bearer {key}"),)
    plain = grpc.insecure_channel(address)
    with _traced(plain) if sdk else plain as channel:
        get = metadata_pb2_grpc.ArtifactServiceStub(channel).GetArtifactVersion
        for _ in range(100):  # warm the connection and the server's caches
            get(request, metadata=md, timeout=30)
        start = time.perf_counter()
        for _ in range(calls):
            get(request, metadata=md, timeout=30)
        return time.perf_counter() - start


def run_server(modes: list[str], calls: int, repeat: int, endpoint: str | None) -> dict[str, list[float]]:
    """Times each client mode against one server, exporting to ``endpoint`` when given."""
    saved = dict(os.environ)
    for k in [k for k in os.environ if k.startswith("OTEL_")]:
        del os.environ[k]
    if endpoint is not None:
        os.environ.update(OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, OTEL_EXPORTER_OTLP_INSECURE="true")
    try:
        with tempfile.TemporaryDirectory(prefix="depot-rpc-overhead-") as tmp:
            proc, address, key = start_allinone(Path(tmp))
            try:
                request = _prepare(address, key)
                out: dict[str, list[float]] = {m: [] for m in modes}
                for _ in range(repeat):
                    for mode in modes:
                        seconds = _time_calls(address, key, request, calls, sdk=mode == "sdk")
                        out[mode].append(seconds / calls * 1e6)
                        line = {
                            "bench": "rpc_overhead",
                            "mode": mode,
                            "calls": calls,
                            "us_per_call": round(out[mode][-1], 1),
                        }
                        print(json.dumps(line), flush=True)
                return out
            finally:
                proc.terminate()
                proc.wait(60)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--modes", default="off,sdk,otlp")
    args = ap.parse_args()
    modes = args.modes.split(",")
    sink, endpoint = _sink()
    runs: dict[str, list[float]] = {}
    try:
        quiet = [m for m in modes if m != "otlp"]
        if quiet:
            runs.update(run_server(quiet, args.calls, args.repeat, None))
        if "otlp" in modes:
            runs.update(run_server(["otlp"], args.calls, args.repeat, endpoint))
    finally:
        sink.stop(None)
    for mode in modes:
        median = statistics.median(runs[mode])
        line = {"bench": "rpc_overhead", "mode": mode, "calls": args.calls, "median_us_per_call": round(median, 1)}
        print(json.dumps({**line, "runs": len(runs[mode])}))


if __name__ == "__main__":
    main()
