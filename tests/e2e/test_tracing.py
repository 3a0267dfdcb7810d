"""Every RPC gets a span named after its method, when tracing is on."""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from support.entities import create_team
from support.servers import ServerThread, make_config

import depot
from depot.services.common import telemetry


def test_rpcs_are_traced(tmp_path, database_url, monkeypatch) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    # What setup() does when an exporter is configured, with this provider
    # instead of the global one; the server is built after it.
    monkeypatch.setattr(telemetry, "tracer", provider.get_tracer("test"))
    monkeypatch.setattr(telemetry, "enabled", True)
    server = ServerThread(make_config(tmp_path / "data", database_url, (tmp_path / "blobs").as_uri())).start()
    try:
        create_team(server.address, server.admin_key, "team")
        with depot.init(entity="team", project="p", address=server.address, api_key=server.admin_key) as run:
            art = depot.Artifact("traced", type="dataset")
            with art.new_file("a.txt") as f:
                f.write("a")
            with art.new_file("mid.bin", mode="wb") as f:
                f.write(b"x" * 100_000)  # above the inline limit: sent in a batch
            with art.new_file("big.bin", mode="wb") as f:
                f.write(b"y" * 2_000_000)  # above the batch limit: streamed on its own
            run.log_artifact(art).wait()
    finally:
        server.stop()
    names = {s.name for s in exporter.get_finished_spans()}
    assert "/depot.metadata.v1.ArtifactService/CreateArtifactVersion" in names
    assert "/depot.manifest.v1.ManifestService/UploadBlob" in names
    assert "/depot.manifest.v1.ManifestService/BatchUpdateBlobs" in names
    assert "/depot.manifest.v1.ManifestService/PutManifest" in names


def test_servers_skip_the_interceptor_without_an_exporter() -> None:
    assert telemetry.enabled is False
    assert telemetry.server_interceptors() == []
