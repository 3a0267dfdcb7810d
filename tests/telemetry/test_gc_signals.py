"""The GC's pass outcome and last-success metrics, which the operator's alerts read (docs/operations.md)."""

from __future__ import annotations

import time

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from support.spans import metric_points

from depot.services.gc.report import Report
from depot.services.gc.telemetry import GcTelemetry


def _pass(gc: GcTelemetry, report: Report) -> None:
    with gc.pass_span(report) as span:
        gc.record(span, report)


def test_passes_are_counted_by_outcome_and_only_a_clean_real_pass_is_a_success() -> None:
    reader = InMemoryMetricReader()
    gc = GcTelemetry(TracerProvider(), MeterProvider(metric_readers=[reader]))
    before = time.time()
    _pass(gc, Report(ran=True, dry_run=False, entity="team", versions_expired=3))
    [success] = metric_points(reader, "depot.gc.last_success")
    assert success.attributes == {"depot.gc.entity": "team"}
    assert before <= success.value <= time.time()

    # A dry run and a pass with errors count as passes, not as successes.
    _pass(gc, Report(ran=True, dry_run=True, entity="team"))
    _pass(gc, Report(ran=True, dry_run=False, entity="team", errors=["sweep: store unavailable"]))
    [still] = metric_points(reader, "depot.gc.last_success")
    assert still.value == success.value
    passes = {
        (p.attributes["depot.gc.outcome"], p.attributes["depot.gc.dry_run"]): p.value
        for p in metric_points(reader, "depot.gc.passes")
    }
    assert passes == {("ok", False): 1, ("ok", True): 1, ("errors", False): 1}
    errors = sum(p.value for p in metric_points(reader, "depot.gc.errors"))
    assert errors == 1
