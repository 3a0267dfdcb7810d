"""An external sort of text keys: sorted runs of bounded size on disk, then one k-way merge.

The mark of a store with millions of live blobs must not be one Python set
of millions of strings (~100 bytes each, so 1M keys ~ 100 MiB and 10M past
any pod's limit). Keys are buffered up to ``run_keys``, sorted, and written
to a run file in the work dir; reading back is ``heapq.merge`` over the run
files, line by line, with repeats dropped. Memory is one run's buffer while
adding and one line per run while merging, whatever the number of keys.

The sort's state changes only after a file is fully written: a failed
write (ENOSPC, EIO) raises :class:`SortFailed` with every key added so far
still held, and the caller must treat the whole sort as unusable (the GC
aborts its pass: a lost key would be a live blob swept). Every file gets a
fresh name from one counter, so no write ever replaces a live run.

Blocking: the GC calls it from a worker thread.
"""

from __future__ import annotations

import contextlib
import heapq
from collections.abc import Iterable, Iterator
from pathlib import Path

# Keys per sorted run: ~60-byte keys, so ~15 MiB of Python strings per run.
RUN_KEYS = 200_000
# Runs merged at once; past it, runs are merged into bigger ones first
# (each open run holds a file buffer).
MAX_FAN_IN = 64


class SortFailed(Exception):
    """The sort could not write or read its work files: its output would be incomplete."""


class ExternalSort:
    """Collects keys in any order (repeats allowed); :meth:`sorted` yields them in order, once each.

    Keys must not contain a newline (store keys never do: ``check_key``).
    """

    def __init__(self, work_dir: Path, run_keys: int | None = None) -> None:
        self._dir = work_dir
        # Read when the sort is made (not when this module is): tests lower it.
        self._run_keys = RUN_KEYS if run_keys is None else run_keys
        self._buffer: list[str] = []
        self._runs: list[Path] = []
        # Names of the files this sort writes: never reused, whatever was merged or removed.
        self._files = 0

    def add(self, keys: Iterable[str]) -> None:
        for key in keys:
            self._buffer.append(key)
            if len(self._buffer) >= self._run_keys:
                self._spill()

    def _spill(self) -> None:
        path = self._write(sorted(set(self._buffer)))
        self._buffer = []
        self._runs.append(path)
        if len(self._runs) >= MAX_FAN_IN * 2:
            self._compact()

    def _compact(self) -> None:
        """Merges the oldest MAX_FAN_IN runs into one, keeping the open files bounded."""
        head = self._runs[:MAX_FAN_IN]
        path = self._write(_merge(head))
        self._runs = [path, *self._runs[MAX_FAN_IN:]]
        for run in head:
            run.unlink(missing_ok=True)

    def _write(self, keys: Iterable[str]) -> Path:
        """A new run file holding ``keys`` (sorted); on any error, no file and SortFailed."""
        path = self._dir / f"run-{self._files:08d}"
        self._files += 1
        try:
            with open(path, "w", encoding="ascii", newline="\n") as f:
                f.writelines(k + "\n" for k in keys)
        except OSError as exc:
            with contextlib.suppress(OSError):  # a partial file; the work dir goes with the pass anyway
                path.unlink(missing_ok=True)
            raise SortFailed(f"writing {path}: {type(exc).__name__}: {exc}") from exc
        return path

    def sorted(self) -> Iterator[str]:
        """Every key added, in order, each once; the run files are removed when done."""
        if self._buffer:
            self._spill()
        runs, self._runs = self._runs, []
        try:
            yield from _merge(runs)
        except OSError as exc:
            raise SortFailed(f"reading the runs: {type(exc).__name__}: {exc}") from exc
        finally:
            for run in runs:
                run.unlink(missing_ok=True)


def _merge(runs: list[Path]) -> Iterator[str]:
    files = []
    try:
        for run in runs:
            files.append(open(run, encoding="ascii", newline="\n"))  # noqa: SIM115 - closed below
        last = None
        for line in heapq.merge(*files):
            if line != last:
                last = line
                yield line[:-1]
    finally:
        for f in files:
            f.close()


__all__ = ["RUN_KEYS", "ExternalSort", "SortFailed"]
