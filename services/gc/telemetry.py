"""OpenTelemetry for GC passes: a span per pass and per phase, and counters.

Through the OpenTelemetry API only: with no SDK provider installed (no
exporter configured, ``common.telemetry.setup``) the tracer and meter are
no-ops, so a pass costs nothing extra. A pass is long (seconds to hours) and
rare, so unlike the per-RPC interceptor these spans need no ``enabled``
switch. Tests hand in their own providers (an in-memory exporter / reader).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import metrics, trace
from opentelemetry.util.types import AttributeValue

from .report import COUNTERS, Report

_NAME = "depot.gc"


class GcTelemetry:
    """Spans and counters of the collector, on the global providers unless given."""

    def __init__(
        self,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
    ):
        self._tracer = trace.get_tracer(_NAME, tracer_provider=tracer_provider)
        meter = metrics.get_meter(_NAME, meter_provider=meter_provider)
        self._counters = {
            name: meter.create_counter(
                f"depot.gc.{name}",
                unit="By" if name == "bytes_freed" else "1",
                description=f"GC: {name.replace('_', ' ')}",
            )
            for name in COUNTERS
        }
        self._errors = meter.create_counter("depot.gc.errors", unit="1", description="GC: errors in passes")
        self._passes = meter.create_counter(
            "depot.gc.passes", unit="{pass}", description="GC: passes run, by outcome (ok, errors) and dry run"
        )
        # Alert on its age (now - value): the collector has not finished a clean pass since.
        self._last_success = meter.create_gauge(
            "depot.gc.last_success",
            unit="s",
            description="GC: Unix time of the last pass that changed data without errors",
        )

    @contextmanager
    def pass_span(self, report: Report) -> Iterator[trace.Span]:
        """The span of a whole pass; the phases' spans are its children."""
        attrs: dict[str, AttributeValue] = {
            "depot.gc.entity": report.entity,
            "depot.gc.dry_run": report.dry_run,
            "depot.gc.trigger": report.trigger,
        }
        with self._tracer.start_as_current_span("gc.pass", attributes=attrs) as span:
            yield span

    @contextmanager
    def phase_span(self, name: str) -> Iterator[trace.Span]:
        with self._tracer.start_as_current_span(f"gc.{name}", attributes={"depot.gc.phase": name}) as span:
            yield span

    def record(self, span: trace.Span, report: Report) -> None:
        """The pass's counters, on its span and (for a pass that changed something) the meters.

        A dry run's counts are what would happen: they go on its span only.
        """
        attrs: dict[str, AttributeValue] = {"depot.gc.entity": report.entity, "depot.gc.dry_run": report.dry_run}
        counters = report.counters()
        span.set_attributes({f"depot.gc.{name}": value for name, value in counters.items()})
        span.set_attribute("depot.gc.errors", len(report.errors))
        if not report.dry_run:
            for name, value in counters.items():
                self._counters[name].add(value, attrs)
        self._errors.add(len(report.errors), attrs)
        self._passes.add(1, {**attrs, "depot.gc.outcome": "errors" if report.errors else "ok"})
        if not report.dry_run and not report.errors:
            self._last_success.set(time.time(), {"depot.gc.entity": report.entity})


__all__ = ["GcTelemetry"]
