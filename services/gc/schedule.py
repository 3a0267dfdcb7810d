"""Scheduled passes: one every DEPOT_GC_INTERVAL_S seconds, on every replica.

Each replica runs its own schedule; the collector lock lets one of them work
and the others answer ``ran=False`` (not stored). A failed pass is logged and
the next tick tries again.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from .collector import Collector

log = logging.getLogger(__name__)


class Schedule:
    """When this process runs its next pass (GetStatus's next_pass_time)."""

    def __init__(self, interval_s: float):
        # 0: no schedule.
        self.interval_s = interval_s
        self.next_pass: datetime | None = None

    async def run(self, collector: Collector) -> None:
        """Runs a pass every ``interval_s`` until cancelled (at once if there is no schedule)."""
        if self.interval_s <= 0:
            return
        while True:
            self.next_pass = datetime.now(UTC) + timedelta(seconds=self.interval_s)
            await asyncio.sleep(self.interval_s)
            try:
                await collector.run("", force=True, trigger="schedule")
            except Exception:  # noqa: BLE001 - keep collecting on the next tick
                log.exception("scheduled gc pass failed")


__all__ = ["Schedule"]
