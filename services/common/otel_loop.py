"""``depot.event_loop.lag``: how late a service's event loop runs what is due.

Every service answers its RPCs on one asyncio loop, and gRPC hands a new call
to the application only when that loop asks for it. A loop kept busy (CPU
work done on it, too many listings at once) lets calls wait unseen in
gRPC's queue; after 30 s (``grpc.server_max_unrequested_time_in_server``)
gRPC cancels them before any handler runs, so no RPC metric or log line
records them. This histogram is the signal that comes first: a probe sleeps
``interval_s`` and records how much later than that it woke. On an idle loop
that is well under a millisecond; seconds mean queued calls
(docs/operations.md gives the alert).
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from opentelemetry import metrics

INTERVAL_S = 0.5


class LoopLag:
    """The probe task of one running loop (``start``/``stop`` on that loop)."""

    def __init__(self, meter: metrics.Meter, interval_s: float = INTERVAL_S) -> None:
        self._lag = meter.create_histogram(
            "depot.event_loop.lag",
            unit="s",
            description="How much later than due the event loop ran a timer (queued work ahead of it)",
        )
        self._interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._probe(), name="depot-loop-lag")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _probe(self) -> None:
        while True:
            due = time.monotonic() + self._interval_s
            await asyncio.sleep(self._interval_s)
            self._lag.record(max(0.0, time.monotonic() - due))


__all__ = ["INTERVAL_S", "LoopLag"]
