"""Child spans and counters of the long steps inside an RPC, for domain modules (no grpc here).

A step's span is a child of the current one (the RPC's server span, or the
step around it), on the global providers that ``telemetry.setup()`` installs
when an exporter is configured; before that, and without one, each call is
OpenTelemetry's no-op API (a few microseconds per step, and steps are
uploads, listing ranges, hashing batches: milliseconds to minutes each).
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager

from opentelemetry import metrics, trace
from opentelemetry.util.types import AttributeValue

_tracer = trace.get_tracer("depot.services")
_meter = metrics.get_meter("depot.services")

bytes_hashed = _meter.create_counter(
    "depot.blobs.bytes_hashed", unit="By", description="Bytes the manifest service hashed to check uploaded blobs"
)
bytes_stored = _meter.create_counter(
    "depot.blobs.bytes_stored", unit="By", description="Bytes of new blobs the manifest service wrote to its store"
)


def step(name: str, attributes: Mapping[str, AttributeValue] | None = None) -> AbstractContextManager[trace.Span]:
    """A child span of the current one around a long step (a blob's store, a listing range)."""
    return _tracer.start_as_current_span(name, attributes=attributes)
