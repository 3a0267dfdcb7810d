"""Every RPC gets a span named after its method."""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import depot
from depot.services.common import telemetry


def test_rpcs_are_traced(server, monkeypatch) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    # The interceptor's module-level tracer is a proxy; point it at this provider.
    monkeypatch.setattr(telemetry, "tracer", provider.get_tracer("test"))
    with depot.init(entity="team", project="p", address=server.address, api_key=server.admin_key) as run:
        art = depot.Artifact("traced", type="dataset")
        with art.new_file("a.txt") as f:
            f.write("a")
        with art.new_file("big.bin", mode="wb") as f:
            f.write(b"x" * 100_000)  # above the inline limit: uploaded on its own
        run.log_artifact(art).wait()
    names = {s.name for s in exporter.get_finished_spans()}
    assert "/depot.metadata.v1.MetadataService/CreateArtifactVersion" in names
    assert "/depot.manifest.v1.ManifestService/UploadBlob" in names
    assert "/depot.manifest.v1.ManifestService/PutManifest" in names
