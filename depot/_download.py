"""Moving an artifact's bytes down, after a commit: streamed, bounded, verified, fail-fast.

How a download runs (``download``)::

    entry stream (ReadManifest, path order, server-side prefix filter)
      │  the calling thread groups entries into tasks:
      │    small uploaded files (≤ 1 MiB)  → one BatchReadBlobs call per ≤ 1000 blobs / 8 MiB
      │    large uploaded files            → one ReadBlob stream each
      │    references                      → groups of 32, fetch_reference each
      ▼
    a pool of worker threads, at most IN_FLIGHT tasks queued or running:
    the stream is read only as fast as the workers drain it, so memory is
    bounded whatever the entry count (never a future per entry).

Every file goes into a temp file beside its destination, in a directory
held open for the whole download (``DirFds``: a directory swapped for a
symlink mid-download cannot lead a write out of the root), is checked against
its digest (batched bytes are hashed in memory before they are written),
then renamed into place. A file already at its destination with the right
digest is skipped, so a download that stopped resumes where it was. The
first error stops the stream and the tasks not yet started, and is raised at
once with what did and did not arrive.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import contextvars
import itertools
import os
import secrets
import stat
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from depot.core.hashing import new_hasher
from depot.manifest.v1 import manifest_pb2 as mpb
from depot.native import EntryMaker, hash_bytes

from . import _blobs
from ._client import Client
from ._copying import Bounded, DirFds, new_temp_in, write_all
from ._exceptions import DepotError, DigestMismatchError, InvalidArgumentError
from ._manifest import ManifestEntry, b64
from ._manifest_read import iter_entries
from ._paths import safe_join
from ._progress import Progress
from ._references import (
    ReferenceCache,
    S3Fetcher,
    default_reference_cache,
    default_s3_fetcher,
    fetch_reference,
    local_copy_matches,
)
from ._rules import check_download_path

__all__ = ["LoggedSource", "download", "fetch_entry", "prepare_root"]

# An uploaded file up to _blobs.SMALL_BLOB travels in a BatchReadBlobs call
# with others (one round trip and one round of server I/O per batch, not
# per file), within the call's limits; larger ones stream.
# References per task: enough to make a task's overhead (a queue hop, a
# future) small against the fetches, few enough that the first error stops
# the rest quickly.
REF_GROUP = 32
WORKERS = 8
# Tasks queued or running at once; the entry stream waits beyond this.
IN_FLIGHT = 2 * WORKERS


def prepare_root(root: str | os.PathLike[str]) -> Path:
    """``root`` as a Path, created if absent."""
    if not isinstance(root, (str, os.PathLike)):
        raise InvalidArgumentError(f"root must be a path, not {type(root).__name__}", field="root")
    target = Path(root)
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InvalidArgumentError(f"cannot create {target}: {e.strerror}", field="root") from None
    return target


@dataclass(frozen=True, slots=True)
class LoggedSource:
    """A logged artifact's manifest on the server: its entries, and downloads of them.

    One object shared by every entry read from it (``ManifestEntry._source``),
    so an entry costs no more than its fields.
    """

    client: Client
    entity: str
    manifest_id: str
    # Where Artifact.download puts the files when no root is given.
    default_root: Path
    file_count: int = -1
    size: int = -1

    def entries(self, *, names: list[str] | None = None, prefix: str = "") -> Iterator[list[ManifestEntry]]:
        """The manifest's entries in path order, a batch at a time, filtered on the server."""
        # Built by the decoder itself, each sharing this source: no per-entry Python.
        make = EntryMaker(ManifestEntry, local_path=None, _source=self)
        return iter_entries(self.client, self.entity, self.manifest_id, names=names, prefix=prefix, make=make)

    def download_entry(self, entry: ManifestEntry, root: str | os.PathLike[str] | None, skip_cache: bool) -> Path:
        # One file: fetched here, without a pool (W&B code loops over entries calling this).
        target = prepare_root(self.default_root if root is None else root)
        cache = None if skip_cache else default_reference_cache()
        fetch_entry(self.client, self.entity, entry, target, False, cache, None, self.manifest_id, None)
        return safe_join(target, entry.path)


@dataclass(slots=True)
class _State:
    """What the workers share: the first error, and what arrived."""

    failed: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None
    arrived: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(self, err: BaseException) -> None:
        with self.lock:
            if self.error is None:
                self.error = err
        self.failed.set()

    def done(self, n: int) -> None:
        with self.lock:
            self.arrived += n


class _Run:
    """One download: the pool, its bound, the state, and the writers the tasks use."""

    def __init__(
        self,
        source: LoggedSource,
        root: Path,
        allow_missing: bool,
        cache: ReferenceCache | None,
        progress: Progress,
    ):
        self.source = source
        self.root = root
        self.allow_missing = allow_missing
        self.cache = cache
        self.s3: S3Fetcher | None = None
        self.s3_lock = threading.Lock()
        self.progress = progress
        self.state = _State()
        self.slots = threading.BoundedSemaphore(IN_FLIGHT)
        self.pool = concurrent.futures.ThreadPoolExecutor(WORKERS, thread_name_prefix="depot-download")
        # The directories written into, open: one walk and mkdir per
        # directory, not per file, and no path re-resolved per file.
        self.dirs = _open_dirs(root, "root")
        # Temp file names: this download's token and a serial (O_EXCL guards a clash).
        self.token = secrets.token_hex(6)
        self.serial = itertools.count()

    def submit(self, task: str, items: list[ManifestEntry]) -> None:
        self.slots.acquire()
        if self.state.failed.is_set():
            self.slots.release()
            return
        # In the caller's context: its trace goes with the workers' calls.
        self.pool.submit(contextvars.copy_context().run, self._run, task, items)

    def _run(self, task: str, items: list[ManifestEntry]) -> None:
        try:
            if self.state.failed.is_set():
                return
            if task == "batch":
                self._batch(items)
            else:
                for e in items:
                    if self.state.failed.is_set():
                        return
                    if fetch_entry(
                        self.source.client,
                        self.source.entity,
                        e,
                        self.root,
                        self.allow_missing,
                        self.cache,
                        self._s3() if e.ref.startswith("s3://") else None,
                        self.source.manifest_id,
                        self.state.failed,
                        self.dirs,
                    ):
                        self.state.done(1)
                    self.progress.advance(1, e.size)
        except BaseException as err:
            self.state.fail(err)
        finally:
            self.slots.release()

    def _s3(self) -> S3Fetcher:
        # Built once per download, on the first s3:// entry only.
        with self.s3_lock:
            if self.s3 is None:
                self.s3 = default_s3_fetcher()
            return self.s3

    def _batch(self, items: list[ManifestEntry]) -> None:
        """Small uploaded files: those not already in place, read in one BatchReadBlobs call."""
        todo: list[tuple[ManifestEntry, str, str]] = []
        kept = kept_bytes = 0
        at = _At(self.dirs)
        try:
            for e in items:
                rel, name, present = _dest(at, e)
                if present and local_copy_matches(e, name, dir_fd=at.enter(e, rel)):
                    kept += 1
                    kept_bytes += e.size
                else:
                    todo.append((e, rel, name))
        finally:
            at.leave()
        self._arrived(kept, kept_bytes)
        if not todo:
            return
        # One copy of each blob, however many paths hold it.
        wanted: dict[tuple[str, str], ManifestEntry] = {}
        for e, _, _ in todo:
            wanted.setdefault((e.algorithm, e.digest), e)
        keys = list(wanted)
        got = _blobs.read_blobs(self.source.client, self.source.entity, self.source.manifest_id, keys)
        blobs = dict(zip(keys, got))
        written = written_bytes = 0
        try:
            for e, rel, name in todo:
                if self.state.failed.is_set():
                    return
                data = blobs[(e.algorithm, e.digest)]
                if len(data) != e.size or b64(hash_bytes(data, (e.algorithm,))[0]) != e.digest:
                    raise DigestMismatchError(
                        f"{e.path}: downloaded bytes do not match digest {e.digest}", field=e.path
                    )
                self._write_atomic(e, at.enter(e, rel), name, data)
                written += 1
                written_bytes += e.size
        finally:
            at.leave()
            # Counted once per batch: a lock per file cost more than the write.
            self._arrived(written, written_bytes)

    def _arrived(self, n: int, nbytes: int) -> None:
        if n:
            self.state.done(n)
            self.progress.advance(n, nbytes)

    def _write_atomic(self, e: ManifestEntry, fd: int, name: str, data: bytes) -> None:
        # A new file beside name in the open directory fd, renamed over it:
        # never a partial file under name. Unbuffered, one write: no file
        # object per small file.
        tmp = f".depot-{self.token}-{next(self.serial)}"
        try:
            out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666, dir_fd=fd)
        except OSError as err:
            raise DepotError(f"{e.path}: cannot write under {self.root}: {err.strerror}", field=e.path) from None
        try:
            try:
                write_all(out, data)
            finally:
                os.close(out)
            os.replace(tmp, name, src_dir_fd=fd, dst_dir_fd=fd)
        except OSError as err:
            # A name this filesystem refuses, a directory where the file goes, a full disk.
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=fd)
            raise DepotError(
                f"{e.path}: cannot write it under {self.root}: {err.strerror or err}", field=e.path
            ) from None

    def close(self) -> None:
        # After a failure the tasks not started are dropped; otherwise all run.
        self.pool.shutdown(wait=True, cancel_futures=self.state.failed.is_set())
        self.dirs.close()


def _open_dirs(root: Path, what: str) -> DirFds:
    try:
        return DirFds(prepare_root(root))
    except OSError as err:
        raise DepotError(f"{what}: cannot open {root}: {err.strerror}", field=what) from None


class _At:
    """The directory a loop over path-ordered entries writes in, pinned open while it stays the same."""

    __slots__ = ("dirs", "fd", "rel")

    def __init__(self, dirs: DirFds) -> None:
        self.dirs = dirs
        self.rel: str | None = None
        self.fd = -1

    def enter(self, e: ManifestEntry, rel: str) -> int:
        """The fd of directory ``rel`` (made if missing), for ``e``'s file."""
        if rel != self.rel:
            self.leave()
            try:
                self.fd = self.dirs.acquire(rel)
            except OSError as err:
                where = self.dirs.root / rel
                raise DepotError(f"{e.path}: cannot write under {where}: {err.strerror}", field=e.path) from None
            self.rel = rel
        return self.fd

    def leave(self) -> None:
        if self.rel is not None:
            rel, self.rel = self.rel, None
            self.dirs.release(rel)


def _dest(at: _At, e: ManifestEntry) -> tuple[str, str, bool]:
    """Where ``e`` goes (directory under root, name in it), and whether something is already there."""
    check_download_path(e.path)
    rel, _, name = e.path.rpartition("/")
    try:
        st = os.stat(name, dir_fd=at.enter(e, rel), follow_symlinks=False)
    except FileNotFoundError:
        return rel, name, False
    except OSError:
        return rel, name, True
    if stat.S_ISLNK(st.st_mode):
        # The write follows a link that stays inside root, as safe_join says.
        dirs = at.dirs
        target = safe_join(dirs.root, e.path)
        inside = target.parent.relative_to(dirs.base).as_posix()
        return ("" if inside == "." else inside), target.name, True
    return rel, name, True


def download(
    source: LoggedSource,
    batches: Iterable[list[ManifestEntry]],
    root: Path,
    *,
    allow_missing: bool = False,
    skip_cache: bool = False,
    total_objects: int | None = None,
    total_bytes: int | None = None,
) -> int:
    """Fetches every entry of ``batches`` into ``root``, verified; returns how many files arrived.

    ``batches`` is read as the workers drain it (see the module docstring).
    ``allow_missing``: a reference whose object is gone is skipped, not an
    error. ``skip_cache``: neither read nor fill the local reference cache.
    A progress bar of objects and bytes is drawn on stderr when it is a
    terminal.

    Raises:
        DepotError: The first error any file met, as its own class, its
            message prefixed with how many files arrived and how many did not.
    """
    cache = None if skip_cache else default_reference_cache()
    progress = Progress(total_objects, total_bytes, label="download")
    run = _Run(source, root, allow_missing, cache, progress)
    seen = 0
    try:
        small: list[ManifestEntry] = []
        small_bytes = 0
        refs: list[ManifestEntry] = []
        for batch in batches:
            if run.state.failed.is_set():
                break
            seen += len(batch)
            for e in batch:
                if e.ref:
                    refs.append(e)
                    if len(refs) >= REF_GROUP:
                        run.submit("one", refs)
                        refs = []
                elif e.size <= _blobs.SMALL_BLOB:
                    small.append(e)
                    small_bytes += e.size
                    if len(small) >= _blobs.MAX_BATCH_BLOBS or small_bytes + _blobs.SMALL_BLOB > _blobs.MAX_BATCH_BYTES:
                        run.submit("batch", small)
                        small, small_bytes = [], 0
                else:
                    run.submit("one", [e])
        if refs:
            run.submit("one", refs)
        if small:
            run.submit("batch", small)
    except BaseException as err:
        # The entry stream itself failed (or the caller interrupted).
        run.state.fail(err)
    finally:
        run.close()
        progress.close()
    first = run.state.error
    if first is None:
        return run.state.arrived
    raise _summary(first, run.state.arrived, total_objects if total_objects is not None else seen) from first


def _summary(err: BaseException, arrived: int, total: int) -> BaseException:
    if isinstance(err, KeyboardInterrupt):
        return err
    head = f"{arrived} of {total} files arrived, {max(total - arrived, 0)} not fetched; first error: "
    if isinstance(err, DepotError):
        return type(err)(head + err.message, reason=err.reason, field=err.field)
    return DepotError(head + f"{type(err).__name__}: {err}")


def fetch_entry(
    client: Client,
    entity: str,
    e: ManifestEntry,
    root: Path,
    allow_missing: bool,
    cache: ReferenceCache | None = None,
    s3: S3Fetcher | None = None,
    manifest_id: str = "",
    stop: threading.Event | None = None,
    dirs: DirFds | None = None,
) -> bool:
    """Downloads one entry into ``root`` (atomically) after verifying it; False if it was allowed missing.

    A file already at its destination with the entry's digest is kept as is.
    ``manifest_id`` lets a registry reader with no role on the logging team
    read the blobs of the linked version (and only those). ``stop``, once
    set, ends the transfer at its next chunk (a download's first error).
    ``dirs``: the download's open directories under ``root`` (one call
    alone opens its own).
    """
    own = dirs is None
    held = _open_dirs(root, "root") if dirs is None else dirs
    at = _At(held)
    try:
        rel, name, present = _dest(at, e)
        fd = at.enter(e, rel)
        if present and local_copy_matches(e, name, dir_fd=fd):
            return True
        try:
            tmp, out = new_temp_in(fd)
        except OSError as err:
            raise DepotError(f"{e.path}: cannot write under {root}: {err.strerror}", field=e.path) from None
        try:
            if not _fetch_into(
                client, entity, e, held.path(rel, fd, tmp), out, allow_missing, cache, s3, manifest_id, stop
            ):
                return False
            try:
                os.replace(tmp, name, src_dir_fd=fd, dst_dir_fd=fd)
            except OSError as err:
                # A name this filesystem refuses (a component past its NAME_MAX),
                # or a directory where the file goes.
                raise DepotError(
                    f"{e.path}: cannot write it under {root}: {err.strerror or err}", field=e.path
                ) from None
            return True
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp, dir_fd=fd)
    finally:
        at.leave()
        if own:
            held.close()


def _fetch_into(
    client: Client,
    entity: str,
    e: ManifestEntry,
    tmp: Path,
    out: int,
    allow_missing: bool,
    cache: ReferenceCache | None,
    s3: S3Fetcher | None,
    manifest_id: str,
    stop: threading.Event | None,
) -> bool:
    """Fills the temp file ``out`` (open; also reachable as ``tmp``) with ``e``'s verified bytes; closes ``out``."""
    if e.ref:
        # The reference fetchers and cache take paths: ``tmp`` stays in the open directory.
        os.close(out)
        return fetch_reference(e, tmp, allow_missing=allow_missing, cache=cache, s3=s3, stop=stop)
    with open(out, "wb", closefd=True) as f:
        req = mpb.ReadBlobRequest(
            entity=entity,
            digest=mpb.BlobDigest(algorithm=e.algorithm, digest=e.digest),
            manifest_id=manifest_id,
        )

        def write(chunks: Iterator[memoryview]) -> str:
            # Hashed as it is written, so the file is not read back.
            # Truncated first: a read retried after a restart starts over.
            f.seek(0)
            f.truncate()
            h = new_hasher(e.algorithm)
            sink = Bounded(f, e.size, stop, e.path)
            for chunk in chunks:
                sink.write(chunk)
                h.update(chunk)
            f.flush()
            return b64(h.digest())

        if client.read(client.read_blob, req, write) != e.digest:
            raise DigestMismatchError(f"{e.path}: downloaded bytes do not match digest {e.digest}", field=e.path)
    return True
