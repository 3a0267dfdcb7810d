"""What telemetry costs a cheap RPC: GetArtifactVersion, with and without an exporter.

    python bench/rpc_overhead.py [--calls 2000] [--repeat 3] [--modes off,otlp]

For each mode, starts an all-in-one server (embedded PostgreSQL, one
worker) in a subprocess, logs one small version, then times ``--calls``
sequential GetArtifactVersion calls from one client, ``--repeat`` times,
and prints one JSON line per run and one with the median:

    {"bench": "rpc_overhead", "mode": "off", "calls": 2000, "us_per_call": ...}

- ``off``: no OTEL_* variable set: no interceptor, no patched asyncpg; what
  every deployment without a collector runs.
- ``otlp``: traces and metrics exported over OTLP to a sink this bench
  serves (it drops what it gets): the price of the signals.

Run it with another checkout's interpreter (its ``.venv/bin/python``) to
measure that code's ``off`` the same way: the bench only starts
``python -m depot.services.allinone`` and calls it.
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


def _time_calls(address: str, key: str, request: pb.GetArtifactVersionRequest, calls: int) -> float:
    md = (("authorization", f"Bearer {key}"),)
    with grpc.insecure_channel(address) as channel:
        get = metadata_pb2_grpc.ArtifactServiceStub(channel).GetArtifactVersion
        for _ in range(100):  # warm the connection and the server's caches
            get(request, metadata=md, timeout=30)
        start = time.perf_counter()
        for _ in range(calls):
            get(request, metadata=md, timeout=30)
        return time.perf_counter() - start


def run_mode(mode: str, calls: int, repeat: int, endpoint: str) -> list[float]:
    saved = dict(os.environ)
    for k in [k for k in os.environ if k.startswith("OTEL_")]:
        del os.environ[k]
    if mode == "otlp":
        os.environ.update(OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, OTEL_EXPORTER_OTLP_INSECURE="true")
    try:
        with tempfile.TemporaryDirectory(prefix="depot-rpc-overhead-") as tmp:
            proc, address, key = start_allinone(Path(tmp))
            try:
                request = _prepare(address, key)
                out = []
                for _ in range(repeat):
                    seconds = _time_calls(address, key, request, calls)
                    out.append(seconds / calls * 1e6)
                    print(
                        json.dumps(
                            {"bench": "rpc_overhead", "mode": mode, "calls": calls, "us_per_call": round(out[-1], 1)}
                        )
                    )
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
    ap.add_argument("--modes", default="off,otlp")
    args = ap.parse_args()
    sink, endpoint = _sink()
    try:
        for mode in args.modes.split(","):
            runs = run_mode(mode, args.calls, args.repeat, endpoint)
            print(
                json.dumps(
                    {
                        "bench": "rpc_overhead",
                        "mode": mode,
                        "calls": args.calls,
                        "median_us_per_call": round(statistics.median(runs), 1),
                        "runs": len(runs),
                    }
                )
            )
    finally:
        sink.stop(None)


if __name__ == "__main__":
    main()
