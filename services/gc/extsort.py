"""An external sort of text keys: sorted runs of bounded size on disk, then one k-way merge.

The mark of a store with millions of live blobs must not be one Python set
of millions of strings (~100 bytes each, so 1M keys ~ 100 MiB and 10M past
any pod's limit). Keys are buffered up to ``run_keys``, sorted, and written
to a run file in the work dir; reading back is ``heapq.merge`` over the run
files, line by line, with repeats dropped. Memory is one run's buffer while
adding and one line per run while merging, whatever the number of keys.

Blocking: the GC calls it from a worker thread.
"""

from __future__ import annotations

import heapq
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

# Keys per sorted run: ~60-byte keys, so ~15 MiB of Python strings per run.
RUN_KEYS = 200_000
# Runs merged at once; past it, runs are merged into bigger ones first
# (each open run holds a file buffer).
MAX_FAN_IN = 64


class ExternalSort:
    """Collects keys in any order (repeats allowed); :meth:`sorted` yields them in order, once each.

    Keys must not contain a newline (store keys never do: ``check_key``).
    """

    def __init__(self, work_dir: Path, run_keys: int = RUN_KEYS) -> None:
        self._dir = work_dir
        self._run_keys = run_keys
        self._buffer: list[str] = []
        self._runs: list[Path] = []

    def add(self, keys: Iterable[str]) -> None:
        for key in keys:
            self._buffer.append(key)
            if len(self._buffer) >= self._run_keys:
                self._spill()

    def _spill(self) -> None:
        keys = sorted(set(self._buffer))
        self._buffer = []
        path = self._dir / f"run-{len(self._runs):06d}"
        with open(path, "w", encoding="ascii", newline="\n") as f:
            f.writelines(k + "\n" for k in keys)
        self._runs.append(path)
        if len(self._runs) >= MAX_FAN_IN * 2:
            self._compact()

    def _compact(self) -> None:
        """Merges the oldest MAX_FAN_IN runs into one, keeping the open files bounded."""
        head, self._runs = self._runs[:MAX_FAN_IN], self._runs[MAX_FAN_IN:]
        path = self._dir / f"merged-{len(self._runs):06d}-{os.getpid()}-{id(head)}"
        with open(path, "w", encoding="ascii", newline="\n") as out:
            out.writelines(k + "\n" for k in _merge(head))
        for run in head:
            run.unlink()
        self._runs.insert(0, path)

    def sorted(self) -> Iterator[str]:
        """Every key added, in order, each once; the run files are removed when done."""
        if self._buffer:
            self._spill()
        runs, self._runs = self._runs, []
        try:
            yield from _merge(runs)
        finally:
            for run in runs:
                run.unlink(missing_ok=True)


def _merge(runs: list[Path]) -> Iterator[str]:
    files = [open(run, encoding="ascii", newline="\n") for run in runs]  # noqa: SIM115 - closed below
    try:
        last = None
        for line in heapq.merge(*files):
            if line != last:
                last = line
                yield line[:-1]
    finally:
        for f in files:
            f.close()


__all__ = ["RUN_KEYS", "ExternalSort"]
