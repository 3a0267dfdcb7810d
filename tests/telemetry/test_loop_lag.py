"""``depot.event_loop.lag``: a server whose loop is blocked says so.

A real grpc.aio server started through ``serving.start`` with an in-memory
metric reader (what ``telemetry.setup`` installs with an exporter). Calls
queued behind a blocked loop leave no RPC metric or log line when gRPC
cancels them (tests/sdk/test_busy_server_cancel.py): this histogram is how
an operator sees it coming.
"""

from __future__ import annotations

import asyncio
import time

import grpc
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from support.spans import metric_points

from depot.services.common import serving, telemetry
from depot.services.common.otel_loop import INTERVAL_S

LAG = "depot.event_loop.lag"


async def _server() -> grpc.aio.Server:
    server = serving.new_server({})
    serving.bind(server, "127.0.0.1:0")
    await serving.start(server, [])
    return server


async def test_a_blocked_loop_shows_as_lag_and_the_probe_stops_with_the_server() -> None:
    reader = InMemoryMetricReader()
    telemetry.use(None, MeterProvider(metric_readers=[reader]))
    try:
        server = await _server()
        try:
            await asyncio.sleep(INTERVAL_S * 4)  # a few probes of an idle loop
            idle = metric_points(reader, LAG)
            assert idle and idle[0].count >= 2
            time.sleep(1.0)  # CPU work on the loop: nothing else runs meanwhile
            await asyncio.sleep(INTERVAL_S * 1.5)
            (point,) = metric_points(reader, LAG)
            # The probe was due at most INTERVAL_S into the block, and ran after it.
            assert point.max >= 1.0 - INTERVAL_S - 0.05
        finally:
            await serving.stop(server, None, 0)
        assert not [t for t in asyncio.all_tasks() if t.get_name() == "depot-loop-lag"]
    finally:
        telemetry.use(None, None)


async def test_no_probe_without_a_metrics_exporter() -> None:
    telemetry.use(None, None)
    server = await _server()
    try:
        assert not [t for t in asyncio.all_tasks() if t.get_name() == "depot-loop-lag"]
    finally:
        await serving.stop(server, None, 0)
