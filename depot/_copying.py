"""Writing downloaded bytes: the copy-while-hashing loop, the fresh files and directories it writes to, its bound."""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import sys
import threading
import zlib
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import IO, BinaryIO, Protocol

from depot.core.hashing import Hasher

from ._exceptions import CommError, DepotError, DigestMismatchError
from ._paths import safe_join

__all__ = [
    "CHUNK",
    "Bounded",
    "DirFds",
    "Gunzip",
    "Sink",
    "copy_hashing",
    "gunzipping",
    "new_temp_in",
    "open_fresh",
    "write_all",
]

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


# zlib's wbits for a gzip wrapper (header and CRC-32/ISIZE trailer checked), not raw deflate or zlib.
_GZIP_WBITS = 16 + zlib.MAX_WBITS


class Gunzip:
    """A writer that gunzips what it is given into ``out``: a ``Content-Encoding: gzip`` body in, the file's bytes out.

    Streamed: at most ``CHUNK`` decoded bytes exist at once, whatever the
    ratio. Concatenated members (``cat a.gz b.gz``, valid gzip) decode one
    after the other and zero padding between them is skipped, as ``gunzip``
    and Python's ``gzip`` do. Bytes that are not gzip, a member's CRC-32 or
    length check failing, or (``finish``) a stream ending mid-member are a
    ``DigestMismatchError`` naming the entry: they cannot be the file that
    was stored. An empty body decodes to an empty file.

    Args:
        out: Where the decoded bytes go (the file).
        what: The entry path, for the error.
    """

    def __init__(self, out: Sink, what: str) -> None:
        self.out = out
        self.what = what
        self._d = zlib.decompressobj(_GZIP_WBITS)
        self._fed = False  # the current member has seen input
        self._members = 0  # members decoded to their end

    def write(self, data: bytes | memoryview, /) -> int:
        buf: bytes | memoryview = data
        while buf:
            if not self._fed and self._members:
                buf = bytes(buf).lstrip(b"\0")
                if not buf:
                    break
            self._fed = True
            buf = self._decode(buf)
        return len(data)

    def _decode(self, buf: bytes | memoryview) -> bytes:
        """Feeds ``buf`` to the current member; what is left past its end (the next member's bytes)."""
        while True:
            try:
                piece = self._d.decompress(buf, CHUNK)
            except zlib.error as e:
                raise self._corrupt(str(e)) from None
            if piece:
                self.out.write(piece)
            if self._d.eof:
                rest = self._d.unused_data
                self._d = zlib.decompressobj(_GZIP_WBITS)
                self._fed = False
                self._members += 1
                return rest
            buf = self._d.unconsumed_tail
            # A full piece with no input left may still hold decoded bytes
            # inside zlib (the rest of a long match): drain them.
            if not buf and len(piece) < CHUNK:
                return b""

    def finish(self) -> None:
        """Raises ``DigestMismatchError`` if the body ended inside a member."""
        if self._fed:
            raise self._corrupt("the stream ends inside a gzip member")

    def _corrupt(self, why: str) -> DigestMismatchError:
        return DigestMismatchError(f"{self.what}: not a valid gzip stream ({why})", field=self.what)


def gunzipping(out: Sink, what: str) -> tuple[Sink, Gunzip]:
    """A writer for a gzip-encoded body bound for ``out``, and its ``Gunzip`` (``finish`` it after the body).

    The encoded bytes are the ones a reference recorded (size and digest),
    so a ``Bounded`` ``out`` keeps bounding and stopping them: the decoder
    goes between it and its file, whose decoded size nothing recorded.
    """
    if isinstance(out, Bounded):
        gz = Gunzip(out.out, what)
        return Bounded(gz, out.limit, out.stop, out.what), gz
    gz = Gunzip(out, what)
    return gz, gz


def copy_hashing(src: IO[bytes], out: Sink, hashers: list[Hasher]) -> int:
    """Copies ``src`` to ``out`` in ``CHUNK`` pieces, feeding each hasher; the bytes copied."""
    n = 0
    while chunk := src.read(CHUNK):
        out.write(chunk)
        for h in hashers:
            h.update(chunk)
        n += len(chunk)
    return n


def write_body_hashing(pieces: Iterator[bytes], out: Sink, hashers: list[Hasher], where: str) -> int:
    """Writes an HTTP body's ``pieces`` to ``out``, feeding each hasher; the bytes written.

    A connection lost mid-body is a ``CommError`` naming ``where`` and how
    far the body got (what the reference fetchers report), not an OSError.
    """
    size = 0
    while True:
        try:
            chunk = next(pieces, b"")
        except OSError as e:
            raise CommError(f"{where}: download interrupted after {size} bytes: {type(e).__name__}: {e}") from None
        if not chunk:
            return size
        out.write(chunk)
        for h in hashers:
            h.update(chunk)
        size += len(chunk)


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


def new_temp_in(dir_fd: int) -> tuple[str, int]:
    """A new empty file in the directory ``dir_fd``, for a download to be renamed over its destination: (name, open fd).

    Not ``tempfile.mkstemp``: its files are 0600, and a downloaded file should
    get the mode ``cp`` gives a new file (0o666 less the umask, applied by
    the kernel, so the process-wide umask is never read or changed).
    """
    for _ in range(100):
        name = f".depot-{secrets.token_hex(8)}"
        try:
            return name, os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666, dir_fd=dir_fd)
        except FileExistsError:
            continue
    raise FileExistsError("no free temporary name in the download directory")


def write_all(fd: int, data: bytes | memoryview) -> None:
    """``os.write`` until all of ``data`` is written (a write may be partial)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# On Linux a path through /proc/self/fd/N reaches the directory N opened,
# whatever its name now leads to: how path-taking code (the reference
# fetchers and cache) writes into a pinned directory.
_PROC_FD = sys.platform.startswith("linux") and os.path.isdir("/proc/self/fd")


class DirFds:
    """The directories a download writes into, each opened once as a file descriptor.

    A directory's path is resolved once per download (resolving it per file
    cost a dozen lstat calls a file). Remembering the resolved path string
    instead would let anyone who can write to the download root swap a
    directory for a symlink mid-download and have every later file written
    through it, outside the root. Holding the directory open does not: it is
    opened component by component from the root's fd without following a
    link (O_NOFOLLOW, made with mkdir where missing), and every file is
    created and renamed relative to that fd, so a swapped name either fails
    to open or the write lands in the directory already opened, inside root.
    A symlink already inside root that stays inside root is followed as
    ``safe_join`` allows, by opening the directory it resolves to.

    At most ``limit`` idle descriptors stay open (least recently used closed
    first); ``acquire`` pins one until ``release``, so a descriptor in use is
    never closed under a writer. Thread-safe.
    """

    def __init__(self, root: Path, limit: int = 128) -> None:
        self.root = root
        self.base = root.resolve()
        self.root_fd = os.open(self.base, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self.limit = limit
        self._lock = threading.Lock()
        # rel -> [fd, users]; rel "" is the root, never evicted.
        self._open: OrderedDict[str, list[int]] = OrderedDict()

    def acquire(self, rel: str) -> int:
        """The fd of directory ``rel`` (no leading or trailing "/"), made if missing; pinned until ``release``."""
        if not rel:
            return self.root_fd
        with self._lock:
            held = self._open.get(rel)
            if held is not None:
                held[1] += 1
                self._open.move_to_end(rel)
                return held[0]
            fd = self._walk(rel)
            self._open[rel] = [fd, 1]
            self._evict()
            return fd

    def release(self, rel: str) -> None:
        if not rel:
            return
        with self._lock:
            self._open[rel][1] -= 1
            self._evict()

    def path(self, rel: str, fd: int, name: str) -> Path:
        """A path to ``name`` in directory ``rel`` open as ``fd``, for code that takes paths.

        On Linux it stays in the directory ``fd`` opened; elsewhere no path
        can, and it is the directory's name (resolved once, as ``safe_join``
        did per file before).
        """
        if _PROC_FD:
            return Path(f"/proc/self/fd/{fd}/{name}")
        return self.base / rel / name

    def _walk(self, rel: str) -> int:
        try:
            return self._open_under(rel)
        except OSError as err:
            if err.errno not in (errno.ELOOP, errno.ENOTDIR):
                raise
        # A symlink on the way: follow it only to a directory inside root
        # (safe_join refuses the rest), then open that without following.
        inside = safe_join(self.root, rel).relative_to(self.base).as_posix()
        return self.root_fd if inside == "." else self._open_under(inside)

    def _open_under(self, rel: str) -> int:
        # From the nearest ancestor already open, one component at a time.
        parts = rel.split("/")
        start = 0
        fd = self.root_fd
        for i in range(len(parts) - 1, 0, -1):
            held = self._open.get("/".join(parts[:i]))
            if held is not None:
                fd, start = held[0], i
                break
        parent = fd
        for name in parts[start:]:
            try:
                child = os.open(name, _DIR_FLAGS, dir_fd=parent)
            except FileNotFoundError:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(name, 0o777, dir_fd=parent)
                child = os.open(name, _DIR_FLAGS, dir_fd=parent)
            finally:
                if parent != fd:
                    os.close(parent)
            parent = child
        return parent

    def _evict(self) -> None:
        if len(self._open) <= self.limit:
            return
        for rel in [r for r, (_, users) in self._open.items() if users == 0]:
            os.close(self._open.pop(rel)[0])
            if len(self._open) <= self.limit:
                return

    def close(self) -> None:
        with self._lock:
            for fd, _ in self._open.values():
                os.close(fd)
            self._open.clear()
            os.close(self.root_fd)
