"""Reading stored manifests, whole or by seeking (domain; no grpc).

A manifest is a run of self-contained blocks of 4096 entries
(``native/_manifest_py.py``). Its block index — offset, size, entry count
and first path of every block, read without inflating more than each
block's first path (tens of ms for 10M entries) — says which blocks can hold
a path or a directory, so ``names`` and ``prefix`` reads decode only those,
and a raw read sends the stored blocks as they are (the client's native
codec decodes them; the server does no per-entry work).

Manifests are immutable, so what is derived from one is cached for good:
its block index and its blob set (bounded LRUs; blob sets by bytes, as a
sorted run of 17-byte records, not a set of strings). Decoding runs in a
worker thread, never on the event loop that serves every other call. A store without local files
(S3) is read from a copy fetched into the staging dir; the copies are kept
too (bounded by count and bytes), so looking up one entry of a large
manifest does not download it again each call.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import bisect
import contextlib
import os
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Generic, TypeVar

from depot.core import entry_paths
from depot.core.hashing import ALGORITHMS
from depot.native import (
    Block,
    ManifestEntry,
    ManifestError,
    ManifestReader,
    decode_block,
    read_block,
    scan_blocks,
)
from depot.services.common.errors import FailedPrecondition, InvalidArgument, NotFound
from depot.services.common.validate import as_invalid_argument

from .blobs import BlobId
from .store import BlobStore

MAX_NAMES = 1000
# Paths looked up are held to the rules every stored path met, the ones a
# download applies (relative, normalized, no NUL), not to rules added since
# (control characters, lengths): an entry of an older version stays findable.
_check_lookup_path = as_invalid_argument(entry_paths.check_download_path)
# Longest start_after: a path is at most 4096 bytes (depot.core.entry_paths).
_MAX_CURSOR = 4096
# Raw blocks per answer message: up to this many bytes (a block is
# ~100-300 KiB), well under the 16 MiB message cap. A block that alone
# passes RAW_BLOCK_LIMIT (only a manifest of huge entries makes one) is sent
# decoded instead.
RAW_MESSAGE_BYTES = 4 * 1024 * 1024
RAW_BLOCK_LIMIT = 12 * 1024 * 1024
# "/" + 1: the paths under directory "p" are exactly those in ["p/", "p0").
_AFTER_SLASH = chr(ord("/") + 1)

# Block indexes kept (~0.2 MiB each for 10M entries).
DEFAULT_INDEX_CACHE = 64
# Blob sets of manifests read by registry readers (ReadBlob's check), by
# total bytes: 17 per uploaded file, so a 10M-file manifest's is ~170 MB.
DEFAULT_BLOB_SET_BYTES = 512 * 1024 * 1024
# Local copies of manifests from a remote store, by count and total bytes
# (a 10M-entry manifest of S3 objects is ~0.5 GB).
DEFAULT_STAGED_FILES = 8
DEFAULT_STAGED_BYTES = 2 * 1024 * 1024 * 1024

_MANIFEST_ID_HEX = frozenset("0123456789abcdef")

K = TypeVar("K")
V = TypeVar("V")


class _Lru(Generic[K, V]):
    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self._size:
            self._items.popitem(last=False)


# A blob set record: the algorithm's index in ALGORITHMS, then the 16 raw digest bytes.
_RECORD = 17
_ALGORITHM_CODE = {a: i for i, a in enumerate(ALGORITHMS)}


def _record(algorithm: str, digest: str) -> bytes | None:
    """The blob set record of an uploaded file's digest (None when it is no blob digest)."""
    code = _ALGORITHM_CODE.get(algorithm)
    if code is None:
        return None
    try:
        raw = base64.b64decode(digest, validate=True)
    except (binascii.Error, ValueError):
        return None
    return bytes([code]) + raw if len(raw) == _RECORD - 1 else None


class BlobSet:
    """The distinct blobs of one manifest: sorted fixed-width records, searched by bisection."""

    def __init__(self, records: bytes) -> None:
        self._data = records
        self.nbytes = len(records)

    @classmethod
    def read(cls, f: BinaryIO) -> BlobSet:
        """The blob set of the manifest in ``f`` (blocking: run it in a worker thread)."""
        found: set[bytes] = set()
        for batch in ManifestReader(f).batches():
            for e in batch:
                if not e.ref and (r := _record(e.algorithm, e.digest)) is not None:
                    found.add(r)
        return cls(b"".join(sorted(found)))

    def __contains__(self, blob: object) -> bool:
        if not isinstance(blob, BlobId):
            return False
        target = _record(blob.algorithm, blob.digest)
        if target is None:
            return False
        data = self._data
        lo, hi = 0, len(data) // _RECORD
        while lo < hi:
            mid = (lo + hi) // 2
            rec = data[mid * _RECORD : (mid + 1) * _RECORD]
            if rec == target:
                return True
            if rec < target:
                lo = mid + 1
            else:
                hi = mid
        return False


class _BlobSets:
    """Blob sets by manifest, least recently used dropped past ``max_bytes``; one build per manifest at a time."""

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._items: OrderedDict[tuple[str, str], BlobSet] = OrderedDict()
        self._bytes = 0
        self._building: dict[tuple[str, str], asyncio.Task[BlobSet]] = {}

    async def get(self, key: tuple[str, str], build: Callable[[], Awaitable[BlobSet]]) -> BlobSet:
        hit = self._items.get(key)
        if hit is not None:
            self._items.move_to_end(key)
            return hit
        task = self._building.get(key)
        if task is None:
            task = asyncio.ensure_future(build())
            self._building[key] = task
            task.add_done_callback(lambda t: self._built(key, t))
        # Shielded: one caller going away does not cancel the others' build.
        return await asyncio.shield(task)

    def _built(self, key: tuple[str, str], task: asyncio.Task[BlobSet]) -> None:
        self._building.pop(key, None)
        if task.cancelled() or task.exception() is not None:
            return
        blobs = task.result()
        if blobs.nbytes > self._max_bytes:
            return  # too big to keep: its callers use it once
        while self._items and self._bytes + blobs.nbytes > self._max_bytes:
            _, old = self._items.popitem(last=False)
            self._bytes -= old.nbytes
        self._items[key] = blobs
        self._bytes += blobs.nbytes


def _decode_at(f: BinaryIO, offset: int) -> list[ManifestEntry]:
    """The entries of the block at ``offset`` (blocking: run it in a worker thread)."""
    return decode_block(read_block(f, offset))


def manifest_key(entity: str, manifest_id: str) -> str:
    """Where a manifest is stored: under its entity, by its SHA-256 (a bad id is InvalidArgument)."""
    if len(manifest_id) != 64 or not set(manifest_id) <= _MANIFEST_ID_HEX:
        raise InvalidArgument(f"invalid manifest id {manifest_id!r}", field="manifest_id")
    return f"{entity}/manifests/{manifest_id[:2]}/{manifest_id}"


@dataclass(frozen=True)
class ReadFilter:
    """Which entries a read returns (all three at once narrow it further)."""

    # Exact paths, sorted and unique; empty is no name filter.
    names: tuple[str, ...] = ()
    # A directory without its trailing "/"; "" is everything.
    prefix: str = ""
    # Only paths after this one (exclusive); "" is from the start.
    start_after: str = ""

    @property
    def is_all(self) -> bool:
        return not (self.names or self.prefix or self.start_after)

    def keeps(self, path: str) -> bool:
        if self.start_after and path <= self.start_after:
            return False
        p = self.prefix
        return not p or path == p or (path.startswith(p) and path[len(p)] == "/")


def read_filter(names: list[str], prefix: str, start_after: str) -> ReadFilter:
    """Validates a request's filters; bad ones are InvalidArgument naming the field."""
    if len(names) > MAX_NAMES:
        raise InvalidArgument(f"at most {MAX_NAMES} names per call", field="names")
    for i, name in enumerate(names):
        _check_lookup_path(name, f"names[{i}]")
    if prefix:
        # One trailing "/" is the directory spelled as such; "/" alone stays absolute.
        prefix = _check_lookup_path(prefix.removesuffix("/") or prefix, "prefix")
    if len(start_after.encode()) > _MAX_CURSOR:
        raise InvalidArgument(f"start_after is longer than {_MAX_CURSOR} bytes", field="start_after")
    return ReadFilter(tuple(sorted(set(names))), prefix, start_after)


class BlockIndex:
    """The blocks of one stored manifest, and which of them a filter needs."""

    def __init__(self, blocks: list[Block]) -> None:
        self.blocks = blocks
        self._firsts = [b.first_path for b in blocks]

    def _holding(self, path: str) -> int:
        """The block that holds ``path`` if any block does (-1 before the first)."""
        return bisect.bisect_right(self._firsts, path) - 1

    def span(self, flt: ReadFilter) -> range:
        """The blocks that can hold entries kept by ``flt`` (names aside), in order."""
        lo = 0
        for bound in (flt.prefix, flt.start_after):
            if bound:
                lo = max(lo, self._holding(bound))
        hi = len(self.blocks)
        if flt.prefix:
            hi = bisect.bisect_left(self._firsts, flt.prefix + _AFTER_SLASH)
        return range(lo, max(lo, hi))

    def by_block(self, names: tuple[str, ...]) -> list[tuple[int, list[str]]]:
        """Sorted ``names`` grouped by the block each would be in (names before the first block dropped)."""
        groups: list[tuple[int, list[str]]] = []
        for name in names:
            i = self._holding(name)
            if i < 0:
                continue
            if groups and groups[-1][0] == i:
                groups[-1][1].append(name)
            else:
                groups.append((i, [name]))
        return groups


def _raw_groups(index: BlockIndex, span: range) -> Iterator[list[Block]]:
    """Consecutive blocks of ``span`` in runs of at most RAW_MESSAGE_BYTES (or one big block)."""
    group: list[Block] = []
    size = 0
    for i in span:
        b = index.blocks[i]
        if group and (size + b.size > RAW_MESSAGE_BYTES or b.size > RAW_BLOCK_LIMIT):
            yield group
            group, size = [], 0
        group.append(b)
        size += b.size
        if b.size > RAW_BLOCK_LIMIT:
            yield group
            group, size = [], 0
    if group:
        yield group


def _read_run(f: BinaryIO, run: list[Block]) -> list[bytes]:
    """The stored bytes of consecutive blocks: one read, split per block."""
    start = run[0].offset
    f.seek(start)
    data = f.read(run[-1].offset + run[-1].size - start)
    if len(data) != run[-1].offset + run[-1].size - start:
        raise ManifestError("truncated manifest")
    return [data[b.offset - start : b.offset - start + b.size] for b in run]


def _corrupt(exc: ManifestError) -> FailedPrecondition:
    return FailedPrecondition(f"stored manifest is corrupt: {exc}")


def _not_found(manifest_id: str) -> NotFound:
    return NotFound(f"manifest {manifest_id} not found", field="manifest_id")


class _StagedCopies:
    """Local copies of manifests from a remote store, reused across reads.

    A copy is opened synchronously on the event loop right after its lookup,
    so an eviction (which unlinks it) never races an open: a reader holding
    the file keeps reading it. A copy the staging sweep removed is fetched
    again.
    """

    def __init__(self, store: BlobStore, max_files: int, max_bytes: int) -> None:
        self._store = store
        self._max_files = max_files
        self._max_bytes = max_bytes
        self._files: OrderedDict[str, tuple[str, int]] = OrderedDict()
        self._bytes = 0
        self._fetching: dict[str, asyncio.Task[str | None]] = {}

    async def open(self, key: str, manifest_id: str) -> BinaryIO:
        while True:
            hit = self._files.get(key)
            if hit is not None:
                try:
                    f = open(hit[0], "rb")  # noqa: SIM115 - the caller closes it
                except FileNotFoundError:
                    self._drop(key)
                else:
                    self._files.move_to_end(key)
                    return f
            task = self._fetching.get(key)
            if task is None:
                task = asyncio.ensure_future(self._fetch(key, manifest_id))
                self._fetching[key] = task
                task.add_done_callback(lambda _: self._fetching.pop(key, None))
                uncached = await asyncio.shield(task)
                if uncached is not None:
                    # Too big to keep: this reader's alone, gone once closed.
                    f = open(uncached, "rb")  # noqa: SIM115 - the caller closes it
                    os.unlink(uncached)
                    return f
            else:
                await asyncio.shield(task)

    async def _fetch(self, key: str, manifest_id: str) -> str | None:
        """Fetches a copy and caches it; returns its path instead when it is too big to cache."""
        path = self._store.staging.new_file("manifest-read-")
        try:
            await self._store.get_to_file(key, Path(path))
            size = os.path.getsize(path)
        except BaseException as exc:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            if isinstance(exc, NotFound):
                raise _not_found(manifest_id) from None
            raise
        if size > self._max_bytes:
            return path
        while self._files and (len(self._files) >= self._max_files or self._bytes + size > self._max_bytes):
            self._drop(next(iter(self._files)))
        self._files[key] = (path, size)
        self._bytes += size
        return None

    def _drop(self, key: str) -> None:
        path, size = self._files.pop(key)
        self._bytes -= size
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


class ManifestReading:
    """Reads stored manifests: all entries, filtered entries, or raw blocks."""

    def __init__(
        self,
        store: BlobStore,
        *,
        index_cache: int = DEFAULT_INDEX_CACHE,
        blob_set_bytes: int = DEFAULT_BLOB_SET_BYTES,
        staged_files: int = DEFAULT_STAGED_FILES,
        staged_bytes: int = DEFAULT_STAGED_BYTES,
    ) -> None:
        self._store = store
        self._indexes: _Lru[str, BlockIndex] = _Lru(index_cache)
        self._blob_sets = _BlobSets(blob_set_bytes)
        self._staged = _StagedCopies(store, staged_files, staged_bytes)

    async def _open(self, entity: str, manifest_id: str) -> tuple[str, BinaryIO]:
        key = manifest_key(entity, manifest_id)
        # A local store's file is read in place: no copy, and reads keep
        # working when its disk is full.
        local = self._store.local_path(key)
        if local is None:
            return key, await self._staged.open(key, manifest_id)
        try:
            return key, open(local, "rb")  # noqa: SIM115 - the caller closes it
        except FileNotFoundError:
            raise _not_found(manifest_id) from None

    async def _index(self, key: str, f: BinaryIO) -> BlockIndex:
        index = self._indexes.get(key)
        if index is None:
            try:
                index = BlockIndex(await asyncio.to_thread(scan_blocks, f))
            except ManifestError as exc:
                raise _corrupt(exc) from None
            self._indexes.put(key, index)
        return index

    async def read(
        self, entity: str, manifest_id: str, flt: ReadFilter = ReadFilter()
    ) -> AsyncIterator[list[ManifestEntry]]:
        """The entries ``flt`` keeps, in path order, a block at a time (lists may be empty)."""
        key, f = await self._open(entity, manifest_id)
        with f:
            try:
                if flt.is_all:
                    # Every block, and the footer's count and size checked.
                    batches = ManifestReader(f).batches()
                    while (batch := await asyncio.to_thread(next, batches, None)) is not None:
                        yield batch
                    return
                index = await self._index(key, f)
                if flt.names:
                    for i, names in index.by_block(flt.names):
                        wanted = set(names)
                        block = await asyncio.to_thread(_decode_at, f, index.blocks[i].offset)
                        yield [e for e in block if e.path in wanted and flt.keeps(e.path)]
                    return
                for i in index.span(flt):
                    block = await asyncio.to_thread(_decode_at, f, index.blocks[i].offset)
                    yield [e for e in block if flt.keeps(e.path)]
            except ManifestError as exc:
                raise _corrupt(exc) from None

    async def read_raw(
        self, entity: str, manifest_id: str, flt: ReadFilter
    ) -> AsyncIterator[tuple[list[bytes], list[ManifestEntry]]]:
        """Stored blocks that can hold what ``flt`` keeps (no names), ~4 MiB per item.

        The first and last blocks may hold entries outside the filter: the
        reader trims them. Each item is (blocks, []) or, for a block too big
        for one message, ([], its entries that ``flt`` keeps).
        """
        if flt.names:
            raise InvalidArgument("raw_blocks cannot be combined with names", field="raw_blocks")
        key, f = await self._open(entity, manifest_id)
        with f:
            index = await self._index(key, f)
            try:
                for run in _raw_groups(index, index.span(flt)):
                    if run[0].size > RAW_BLOCK_LIMIT:
                        block = await asyncio.to_thread(_decode_at, f, run[0].offset)
                        yield [], [e for e in block if flt.keeps(e.path)]
                    else:
                        yield await asyncio.to_thread(_read_run, f, run), []
            except ManifestError as exc:
                raise _corrupt(exc) from None

    async def contains_blob(self, entity: str, manifest_id: str, blob: BlobId) -> bool:
        """Whether the manifest lists ``blob`` as an uploaded file (recent answers cached)."""

        async def build() -> BlobSet:
            _, f = await self._open(entity, manifest_id)
            with f:
                try:
                    return await asyncio.to_thread(BlobSet.read, f)
                except ManifestError as exc:
                    raise _corrupt(exc) from None

        return blob in await self._blob_sets.get((entity, manifest_id), build)


__all__ = ["MAX_NAMES", "BlobSet", "BlockIndex", "ManifestReading", "ReadFilter", "manifest_key", "read_filter"]
