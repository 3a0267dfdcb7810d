"""Staging: the files the manifest service writes before they are stored.

Uploads, manifest builds and manifest reads spool to files in one staging
directory: ``~staging`` under the local blob root (the same filesystem as
the blobs, so storing a staged upload is one atomic rename, and its space
shows where the operator looks), or ``<data dir>/staging`` for the S3
backend. They once went to the system temp dir, where a SIGKILLed server
left them for good (47 ``upload-*`` files, 478 MB, after 24 kills).

Files are removed when their request ends; what a crash leaves is swept at
start and periodically: anything untouched for the grace period (an hour by
default). An upload in flight rewrites its file at least every idle timeout
(60 s), or the stream is closed, so it is never that old.

Disk errors become domain errors here, naming the path and the errno, so
that a full or read-only disk is answered as what it is rather than as
"try again": ENOSPC/EDQUOT/EFBIG → :class:`StorageFull`
(RESOURCE_EXHAUSTED), EROFS/EACCES/EPERM → :class:`StorageNotWritable`
(FAILED_PRECONDITION). Other OSErrors pass through unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from depot.services.common.errors import DepotError, StorageFull, StorageNotWritable

log = logging.getLogger(__name__)

DEFAULT_GRACE_S = 3600.0
# Sweeps run this often (bounded): often enough that a crash's leftovers do
# not outlive the grace period by much, rarely enough to cost nothing.
MIN_SWEEP_INTERVAL_S = 1.0
MAX_SWEEP_INTERVAL_S = 900.0

_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
_NOT_WRITABLE = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})


def storage_error(exc: OSError, path: str | os.PathLike[str]) -> DepotError | None:
    """The domain error for a disk error that retrying will not fix, else None."""
    where = exc.filename or os.fspath(path)
    name = errno.errorcode.get(exc.errno or 0, "?")
    detail = f"{where}: {exc.strerror or exc} ({name}, errno {exc.errno})"
    if exc.errno in _FULL:
        return StorageFull(f"the blob store is full: {detail}; nothing was stored")
    if exc.errno in _NOT_WRITABLE:
        return StorageNotWritable(f"the blob store is not writable: {detail}; nothing was stored")
    return None


@contextlib.contextmanager
def storage_errors(path: str | os.PathLike[str]) -> Iterator[None]:
    """Turns a full or read-only disk under ``path`` into its domain error."""
    try:
        yield
    except OSError as exc:
        err = storage_error(exc, path)
        if err is None:
            raise
        raise err from exc


class Staging:
    """One staging directory and its sweep."""

    def __init__(self, path: Path, grace_s: float = DEFAULT_GRACE_S):
        self.path = path
        self.grace_s = grace_s
        with storage_errors(path):
            os.makedirs(path, exist_ok=True)

    def new_file(self, prefix: str) -> str:
        """A new empty file (the caller removes it, or a sweep does after a crash)."""
        with storage_errors(self.path):
            fd, name = tempfile.mkstemp(dir=self.path, prefix=prefix)
        os.close(fd)
        return name

    def new_dir(self, prefix: str) -> str:
        with storage_errors(self.path):
            return tempfile.mkdtemp(dir=self.path, prefix=prefix)

    def sweep(self, now: float | None = None) -> int:
        """Removes entries untouched for the grace period; returns how many."""
        cutoff = (time.time() if now is None else now) - self.grace_s
        removed = 0
        try:
            entries = list(os.scandir(self.path))
        except FileNotFoundError:
            return 0
        for entry in entries:
            try:
                if _newest_mtime(entry) >= cutoff:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path)
                else:
                    os.unlink(entry.path)
                removed += 1
            except FileNotFoundError:
                continue  # its request ended meanwhile
            except OSError as exc:
                log.warning("could not sweep staged %s: %s", entry.path, exc)
        if removed:
            log.info("swept %d stale staged file(s) from %s", removed, self.path)
        return removed

    def sweep_interval_s(self) -> float:
        return min(max(self.grace_s / 4, MIN_SWEEP_INTERVAL_S), MAX_SWEEP_INTERVAL_S)

    async def sweep_periodically(self) -> None:
        """Sweeps every :meth:`sweep_interval_s` until cancelled."""
        while True:
            await asyncio.sleep(self.sweep_interval_s())
            try:
                await asyncio.to_thread(self.sweep)
            except Exception:  # noqa: BLE001 - one failed sweep must not end the sweeping
                log.exception("sweeping %s failed; trying again in %.0f s", self.path, self.sweep_interval_s())


def _newest_mtime(entry: os.DirEntry[str]) -> float:
    # A manifest build's directory keeps its own mtime while the files in it
    # grow: the newest of them says whether the build is alive.
    newest = entry.stat(follow_symlinks=False).st_mtime
    if entry.is_dir(follow_symlinks=False):
        for root, dirs, files in os.walk(entry.path):
            for name in dirs + files:
                with contextlib.suppress(FileNotFoundError):
                    newest = max(newest, os.lstat(os.path.join(root, name)).st_mtime)
    return newest


__all__ = ["Staging", "storage_error", "storage_errors", "DEFAULT_GRACE_S"]
