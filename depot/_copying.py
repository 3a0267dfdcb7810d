"""Writing downloaded bytes: the one copy-while-hashing loop, the fresh files it writes to, and their bound."""

from __future__ import annotations

import os
import secrets
import threading
from pathlib import Path
from typing import IO, BinaryIO, Protocol

from depot.core.hashing import Hasher

from ._exceptions import DepotError, DigestMismatchError

__all__ = ["CHUNK", "Bounded", "Sink", "copy_hashing", "new_temp_beside", "open_fresh", "write_all"]

CHUNK = 1 << 20


class Sink(Protocol):
    """Where downloaded bytes go: a file, or a ``Bounded`` writer in front of one."""

    def write(self, data: bytes | memoryview, /) -> int: ...


class Bounded:
    """A writer that stops a download: past ``limit`` bytes, or once ``stop`` is set.

    Every fetch loop (ReadBlob, S3, http, file) writes through one, so a peer
    sending endless bytes fails the file at its recorded size instead of
    filling the disk before the digest check, and the first error of a
    download stops the files already streaming at their next chunk instead
    of when they end.

    Args:
        out: The file written to.
        limit: The bytes the entry recorded; None for no bound (``none``
            entries recorded no size they promise).
        stop: Set when the download has already failed elsewhere.
        what: The entry path, for the error.
    """

    def __init__(self, out: Sink, limit: int | None, stop: threading.Event | None, what: str) -> None:
        self.out = out
        self.limit = limit
        self.stop = stop
        self.what = what
        self.written = 0

    def write(self, data: bytes | memoryview, /) -> int:
        if self.stop is not None and self.stop.is_set():
            # Never reported: the download keeps the error that set ``stop``.
            raise DepotError(f"{self.what}: stopped, another file of the download failed", field=self.what)
        self.written += len(data)
        if self.limit is not None and self.written > self.limit:
            raise DigestMismatchError(
                f"{self.what}: the source sent more than the {self.limit} bytes recorded", field=self.what
            )
        return self.out.write(data)


def copy_hashing(src: IO[bytes], out: Sink, hashers: list[Hasher]) -> int:
    """Copies ``src`` to ``out`` in ``CHUNK`` pieces, feeding each hasher; the bytes copied."""
    n = 0
    while chunk := src.read(CHUNK):
        out.write(chunk)
        for h in hashers:
            h.update(chunk)
        n += len(chunk)
    return n


def open_fresh(path: Path) -> BinaryIO:
    """``path`` opened for writing as a new file, never through the file it named.

    The reference cache adopts downloads by hard link, so the file at
    ``path`` may share its bytes with a cached object: truncating it would
    rewrite the cache. Unlinking first and creating exclusively (no symlink
    followed) writes a new inode, with the mode any new file gets (0o666
    less the umask).
    """
    path.unlink(missing_ok=True)
    return open(path, "xb")


def new_temp_beside(dest: Path) -> Path:
    """An empty new file in ``dest``'s directory, for the download of ``dest`` to be renamed over it.

    Not ``tempfile.mkstemp``: its files are 0600, and a downloaded file should
    get the mode ``cp`` gives a new file (0o666 less the umask, applied by
    the kernel, so the process-wide umask is never read or changed).
    """
    for _ in range(100):
        tmp = dest.parent / f".depot-{secrets.token_hex(8)}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return tmp
    raise FileExistsError(f"no free temporary name in {dest.parent}")


def write_all(fd: int, data: bytes | memoryview) -> None:
    """``os.write`` until all of ``data`` is written (a write may be partial)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
