"""DEPOT_LOG_FORMAT=json: one JSON object per log line, with the trace id."""

from __future__ import annotations

import json
import logging

from depot.services.common import telemetry


def test_json_log_lines() -> None:
    record = logging.LogRecord("depot.x", logging.INFO, __file__, 1, "hello %s", ("world",), None)
    telemetry.TraceContextFilter().filter(record)
    line = json.loads(telemetry.JsonFormatter().format(record))
    assert line["message"] == "hello world"
    assert line["level"] == "INFO" and line["logger"] == "depot.x"
    assert line["trace_id"] == line["span_id"] == "-"  # no span is active here
