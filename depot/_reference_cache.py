"""The local cache of verified reference downloads, shared by threads and processes.

Files are written to a temp file and ``os.replace``-d into place, so a reader
never sees a partial object. Beside each object the cache stores the xxh3-128
of its bytes (``<name>.xxh3``), and ``get`` hashes the object again before
handing it out: a cached file changed since (disk error, an edit through a
hard link, anyone writing into the directory) is evicted and reported as a
miss, never served. A size check alone would pass a same-size rewrite.

Why a cold download costs no second copy: ``adopt`` hard-links the file the
download just wrote and verified into the cache, with the xxh3 the download
computed while the bytes streamed past (xxh3 runs at 10+ GB/s, far below
the network's cost). The download's file and the cached object then share
an inode, so an in-place edit of the downloaded file changes the cached
bytes too; the xxh3 check on the next ``get`` catches exactly that, and the
object is fetched again. Where a hard link is impossible (another
filesystem, a filesystem without links) ``adopt`` falls back to ``put``'s
copy. A hit is always copied out, never linked, so two download roots never
share an inode through the cache.

The cache holds private bucket data: its directory is created 0700, so other
local users cannot read it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import itertools
import os
import tempfile
import threading
import time
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import xxhash

from depot.core.hashing import Hasher

from ._copying import copy_hashing, open_fresh
from ._exceptions import InvalidArgumentError

__all__ = ["DEFAULT_CACHE_MAX_BYTES", "CacheKey", "ReferenceCache", "default_reference_cache"]

DEFAULT_CACHE_MAX_BYTES = 10 << 30
_SUM_SUFFIX = ".xxh3"


class CacheKey(NamedTuple):
    """What makes a downloaded reference the same bytes: where, which version, which digest."""

    ref: str
    version_id: str
    digest: str

    def file_name(self) -> str:
        raw = "\0".join(self).encode()
        return hashlib.sha256(raw).hexdigest()


class ReferenceCache:
    """A bounded local cache of verified reference downloads.

    See the module docstring for how objects are verified. Each ``get``
    touches the file's mtime, and when the cached total passes ``max_bytes``
    the least recently used files are evicted (mtime, not atime, which
    ``noatime`` mounts never update). The running total lives in a file
    updated under an ``flock``, so threads and processes sharing the
    directory keep one bound.

    Args:
        root: The cache directory (created if absent).
        max_bytes: The size bound; an object larger than it is never cached.
    """

    def __init__(self, root: str | os.PathLike[str], max_bytes: int = DEFAULT_CACHE_MAX_BYTES):
        if max_bytes < 0:
            raise InvalidArgumentError("max_bytes must not be negative", field="max_bytes")
        self.root = Path(root)
        self.max_bytes = max_bytes
        self._objects = self.root / "objects"
        self._tmp = self.root / "tmp"
        # Parents (~/.cache/depot) as mkdir -p makes them; the cache itself private.
        self.root.parent.mkdir(parents=True, exist_ok=True)
        for d in (self.root, self._objects, self._tmp):
            d.mkdir(mode=0o700, exist_ok=True)
        st = self.root.stat()
        if st.st_mode & 0o077 and st.st_uid == os.getuid():
            self.root.chmod(0o700)  # a cache an older SDK made readable to all
        self._lock_path = self.root / "lock"
        self._total_path = self.root / "total"
        self._thread_lock = threading.Lock()
        self._lock_fd = (-1, -1)  # (pid, fd): a forked child opens its own, or flock would not exclude it
        self._names = itertools.count()
        self._dirs: set[str] = set()
        # Bytes this process installed and has not yet added to the shared
        # total (a list, so the exit finalizer shares it). Adding every put
        # to the total file cost an flock and four file operations per
        # object; a large cache batches them up to 1/64 of its bound.
        self._pending = [0]
        self._pending_lock = threading.Lock()
        self._slack = max_bytes // 64 if max_bytes >= 64 << 20 else 0
        weakref.finalize(self, _add_to_total, str(self._lock_path), str(self._total_path), self._pending)
        if not self._total_path.exists():
            with self._locked():
                self._write_total(self._read_total())  # the finalizer adds to an existing total

    def _path(self, key: CacheKey) -> Path:
        name = key.file_name()
        return self._objects / name[:2] / name

    def _name(self, key: CacheKey) -> str:
        # The hot paths use str: pathlib's parsing cost more than the syscalls.
        name = key.file_name()
        return f"{self._objects}/{name[:2]}/{name}"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with self._thread_lock:
            pid, fd = self._lock_fd
            if pid != os.getpid():
                fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
                self._lock_fd = (os.getpid(), fd)
                weakref.finalize(self, os.close, fd)
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)

    def get(self, key: CacheKey, dest: str | os.PathLike[str], hashers: list[Hasher] | None = None) -> bool:
        """Puts the cached bytes of ``key`` at ``dest`` (replacing it); False on a miss.

        The bytes are hashed against the digest ``put`` recorded; an object
        that fails (or has no recorded digest) is evicted and is a miss, and
        ``dest`` is then left empty. ``hashers`` are fed the same bytes, so a
        caller can check them against its own digest without reading them again.
        """
        src = self._name(key)
        dest = Path(dest)
        try:
            with open(src + _SUM_SUFFIX, "rb") as f:
                want = f.read()
        except FileNotFoundError:
            if os.path.exists(src):
                # No record of its digest (a cache from an older SDK): never trusted.
                self.discard(key)
            return False
        every = [xxhash.xxh3_128(), *(hashers or [])]
        try:
            # Opening first means an eviction racing us unlinks a file we
            # still read in full.
            with open(src, "rb") as f, open_fresh(dest) as out:
                copy_hashing(f, out, every)
                ok = every[0].digest() == want
                if not ok:
                    out.truncate(0)
        except FileNotFoundError:
            return False
        if not ok:
            self.discard(key)
            return False
        _touch(src)
        return True

    def put(self, key: CacheKey, src: str | os.PathLike[str]) -> bool:
        """Copies ``src`` into the cache under ``key``; False when it is larger than the bound.

        The caller vouches for ``src``: put only bytes verified against the entry.
        """
        size = os.stat(src).st_size
        if size > self.max_bytes:
            return False
        fd, tmp_name = tempfile.mkstemp(dir=self._tmp, prefix=".put-")
        try:
            h = xxhash.xxh3_128()
            with os.fdopen(fd, "wb") as out, open(src, "rb") as f:
                copy_hashing(f, out, [h])
            self._install(key, tmp_name, h.digest(), size)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
            raise
        return True

    def adopt(self, key: CacheKey, src: str | os.PathLike[str], xxh3_128: bytes) -> bool:
        """Caches ``src`` by hard-linking it (a copy where links fail); False when it is larger than the bound.

        ``xxh3_128`` is the raw xxh3-128 digest of ``src``'s bytes, computed
        while they were verified against the entry (see the module docstring).
        ``src`` stays where it is; the caller may rename it afterwards.
        """
        size = os.stat(src).st_size
        if size > self.max_bytes:
            return False
        tmp_name = str(self._tmp / f".adopt-{os.getpid()}-{threading.get_ident()}-{next(self._names)}")
        try:
            os.link(src, tmp_name)
        except OSError:
            return self.put(key, src)
        try:
            self._install(key, tmp_name, xxh3_128, size)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
            raise
        return True

    def _install(self, key: CacheKey, tmp_name: str, digest: bytes, size: int) -> None:
        """Moves a complete temp object and its digest into place, then keeps the bound.

        Not under the lock: a racing put of the same key or an eviction
        leaves the running total off by that object, which the next
        eviction's scan corrects.
        """
        sum_tmp = f"{tmp_name}{_SUM_SUFFIX}"
        target = self._name(key)
        try:
            with open(sum_tmp, "wb") as out:
                out.write(digest)
            parent = os.path.dirname(target)
            if parent not in self._dirs:
                os.makedirs(parent, exist_ok=True)
                self._dirs.add(parent)
            try:
                old = os.stat(target).st_size
            except FileNotFoundError:
                old = 0
            # Digest first: a reader between the two replaces sees the new
            # digest with the old bytes of the same key (the same bytes).
            os.replace(sum_tmp, target + _SUM_SUFFIX)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(sum_tmp)
            raise
        os.replace(tmp_name, target)
        self._account(size - old, keep=Path(target))

    def _account(self, delta: int, keep: Path) -> None:
        """Adds ``delta`` bytes to the total (batched up to the slack) and evicts past the bound."""
        with self._pending_lock:
            self._pending[0] += delta
            if self._pending[0] <= self._slack:
                return
            delta, self._pending[0] = self._pending[0], 0
        with self._locked():
            total = self._read_total() + delta
            if total > self.max_bytes:
                total = self._evict(keep=keep)
            self._write_total(total)

    def discard(self, key: CacheKey) -> None:
        """Removes the object of ``key``, if cached."""
        target = self._path(key)
        with self._locked():
            try:
                size = target.stat().st_size
            except FileNotFoundError:
                size = 0
            _unlink_object(target)
            self._write_total(max(self._read_total() - size, 0))

    def total_bytes(self) -> int:
        """The bytes the cache holds now (a fresh scan)."""
        return sum(st.st_size for _, st in self._scan())

    def clear(self) -> None:
        """Removes every cached object."""
        with self._locked():
            for p, _ in self._scan():
                _unlink_object(p)
            self._write_total(0)

    def _scan(self) -> list[tuple[Path, os.stat_result]]:
        out = []
        for sub in self._objects.iterdir():
            try:
                names = list(os.scandir(sub))
            except (NotADirectoryError, FileNotFoundError):
                continue
            for entry in names:
                if entry.name.endswith(_SUM_SUFFIX):
                    continue
                with contextlib.suppress(FileNotFoundError):
                    out.append((Path(entry.path), entry.stat()))
        return out

    def _evict(self, keep: Path) -> int:
        # A fresh scan under the lock also corrects any drift in the total
        # (a process that died between replace and the total update).
        files = self._scan()
        total = sum(st.st_size for _, st in files)
        files.sort(key=lambda f: (f[1].st_mtime_ns, f[0].name))
        for p, st in files:
            if total <= self.max_bytes:
                break
            if p == keep:
                continue
            _unlink_object(p)
            total -= st.st_size
        return total

    def _read_total(self) -> int:
        try:
            return int(self._total_path.read_text())
        except (FileNotFoundError, ValueError):
            return sum(st.st_size for _, st in self._scan())

    def _write_total(self, total: int) -> None:
        tmp = self._total_path.with_name(f"total.{os.getpid()}.{threading.get_ident()}")
        tmp.write_text(str(total))
        os.replace(tmp, self._total_path)


def _sum_path(path: Path) -> Path:
    return path.with_name(path.name + _SUM_SUFFIX)


def _unlink_object(path: Path) -> None:
    for p in (path, _sum_path(path)):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


def _touch(path: str | Path) -> None:
    # The fine clock: the kernel stamps files from a coarse one (ms steps),
    # which would tie objects used in quick succession.
    now = time.time_ns()
    with contextlib.suppress(OSError):
        os.utime(path, ns=(now, now))


def default_reference_cache() -> ReferenceCache | None:
    """The cache at ``DEPOT_CACHE_DIR`` (default ``~/.cache/depot/references``).

    Bounded by ``DEPOT_CACHE_MAX_BYTES`` (default 10 GiB); ``0`` turns the cache
    off and returns None, as does a directory that cannot be created.
    """
    max_bytes = DEFAULT_CACHE_MAX_BYTES
    raw = os.environ.get("DEPOT_CACHE_MAX_BYTES")
    if raw:
        try:
            max_bytes = int(raw)
        except ValueError:
            raise InvalidArgumentError(
                f"DEPOT_CACHE_MAX_BYTES must be an integer, not {raw!r}",
                field="DEPOT_CACHE_MAX_BYTES",
            ) from None
    if max_bytes <= 0:
        return None
    root = os.environ.get("DEPOT_CACHE_DIR")
    path = Path(root) if root else Path.home() / ".cache" / "depot" / "references"
    try:
        return ReferenceCache(path, max_bytes)
    except OSError:
        return None


def _add_to_total(lock_path: str, total_path: str, pending: list[int]) -> None:
    """At exit (the cache's finalizer): adds what this process installed and never accounted."""
    if not pending[0]:
        return
    with contextlib.suppress(OSError, ValueError), open(lock_path, "a+b") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        with open(total_path) as t:
            total = int(t.read())
        tmp = f"{total_path}.{os.getpid()}.exit"
        with open(tmp, "w") as t:
            t.write(str(total + pending[0]))
        os.replace(tmp, total_path)
        pending[0] = 0
