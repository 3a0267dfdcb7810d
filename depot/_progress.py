"""A one-line progress bar on stderr: objects and bytes, with totals when known.

Used by downloads (objects fetched) and listings (objects listed). It draws
only when its stream is a terminal, so logs, pipes and CI output stay
quiet; ``enabled=`` overrides that either way.

``advance`` is called from worker threads once per object (tens of
thousands a second), so it only adds under a lock and redraws at most
every 0.1 s; the final figures are drawn once on close. No dependency:
a bar of one carriage-returned line is all a CLI needs here.
"""

from __future__ import annotations

import sys
import threading
import time
from types import TracebackType
from typing import TextIO

__all__ = ["Progress"]

_REDRAW_S = 0.1
_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def _bytes(n: int) -> str:
    value = float(n)
    for unit in _UNITS:
        if value < 1024 or unit == _UNITS[-1]:
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


class Progress:
    """Counts objects and bytes; draws ``label: 12/100 objects, 1.0/9.5 MiB, 300 objects/s``.

    Args:
        total_objects: How many objects are expected, or None (unknown).
        total_bytes: How many bytes are expected, or None (unknown).
        label: What is being counted ("download", "listing s3://b/p").
        stream: Where to draw (default: ``sys.stderr``).
        enabled: Draw or not; default: only when ``stream`` is a terminal.

    Use as a context manager (or call :meth:`close`): the last line is drawn
    and ended with a newline once.
    """

    def __init__(
        self,
        total_objects: int | None = None,
        total_bytes: int | None = None,
        label: str = "",
        *,
        stream: TextIO | None = None,
        enabled: bool | None = None,
    ):
        self.total_objects = total_objects
        self.total_bytes = total_bytes
        self.label = label
        self.objects = 0
        self.bytes = 0
        self._stream = sys.stderr if stream is None else stream
        if enabled is None:
            isatty = getattr(self._stream, "isatty", None)
            enabled = bool(isatty and isatty())
        self.enabled = enabled
        self._lock = threading.Lock()
        self._start = time.monotonic()
        self._next_draw = self._start
        self._closed = False

    def advance(self, objects: int = 1, bytes: int = 0) -> None:
        """Adds to the counts; redraws if the last draw is 0.1 s old."""
        with self._lock:
            self.objects += objects
            self.bytes += bytes
            if not self.enabled or self._closed:
                return
            now = time.monotonic()
            if now < self._next_draw:
                return
            self._next_draw = now + _REDRAW_S
            self._draw(now, end="")

    def line(self) -> str:
        """The current figures as one line (what the bar shows)."""
        return self._line(time.monotonic())

    def _line(self, now: float) -> str:
        objects = f"{self.objects:,}" + (f"/{self.total_objects:,}" if self.total_objects is not None else "")
        size = _bytes(self.bytes) + (f"/{_bytes(self.total_bytes)}" if self.total_bytes is not None else "")
        elapsed = now - self._start
        rate = f", {self.objects / elapsed:,.0f} objects/s" if elapsed > 0 else ""
        head = f"{self.label}: " if self.label else ""
        return f"{head}{objects} objects, {size}{rate}"

    def _draw(self, now: float, end: str) -> None:
        try:
            # "\r" back to the line's start, "\x1b[K" clears what a longer
            # previous line left.
            self._stream.write(f"\r{self._line(now)}\x1b[K{end}")
            self._stream.flush()
        except (OSError, ValueError):
            # A closed or broken stderr must never fail the work being counted.
            self.enabled = False

    def close(self) -> None:
        """Draws the final figures and ends the line (once)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self.enabled:
                self._draw(time.monotonic(), end="\n")

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
