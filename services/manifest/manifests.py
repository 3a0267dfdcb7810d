"""Building and reading manifests stored as blobs (domain; no grpc).

A manifest is written with the native codec as entries arrive (in strictly
increasing path order) — in memory while small, then to a temporary file, so
a manifest of millions of entries never sits in memory — and stored under
its SHA-256. The returned summary is signed so the metadata service can
trust the digest and size.

Entries of small uploaded files may carry their bytes inline; they are
checked and stored as blobs here, which spares a version of small files the
FindMissingBlobs and UploadBlob round trips.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import hashlib
import os
import shutil
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

from depot.core.hashing import ALGORITHMS
from depot.native import (
    ManifestEntry,
    ManifestError,
    ManifestReader,
    ManifestSummary,
    ManifestWriter,
)
from depot.services.common import validate
from depot.services.common.credentials import sign_manifest
from depot.services.common.errors import ErrorReason, FailedPrecondition, InvalidArgument, NotFound
from depot.services.common.validate import check_entry_path

from .blobs import MAX_INLINE_BLOB, BlobId, Blobs, check_blob_id
from .reading import ManifestReading, manifest_key
from .references import ListingProgress, ReferencePolicy, ReferenceSpec
from .staging import Staging, storage_errors
from .store import BlobStore

REF_SCHEMES = ("s3", "gs", "az", "file", "http", "https")
REF_ALGORITHMS = ("etag", "md5", "sha256", "xxh3_128", "none")
MAX_EXTRA = 16 * 1024
# A ref (a URI), version id or digest longer than this is no real one; it is
# refused at the edge so every entry fits the reader's block limits.
MAX_FIELD = 4096
# Stored manifests one header may include: each is fetched and merged.
MAX_INCLUDED = 16
MAX_INLINE_TOTAL = 1024 * 1024  # inline file bytes per manifest
# A manifest up to this size is built in memory; a larger one spills to disk.
_SPOOL_MEMORY = 4 * 1024 * 1024

# One streamed entry and its inline content (b"" when uploaded separately).
EntryIn = tuple[ManifestEntry, bytes]


@dataclass(frozen=True)
class StoredManifest:
    entity: str
    manifest_id: str
    digest: str
    digest_algorithm: str
    size: int
    file_count: int
    token: str
    # When the build began (signed): metadata honours the token for grace/2.
    create_time_unix_ms: int


def _check_entry(e: ManifestEntry, i: int) -> None:
    field = f"entries[{i}]"
    check_entry_path(e.path, f"{field}.path")
    if e.size < 0:
        raise InvalidArgument(f"entry {e.path!r} has a negative size", field=f"{field}.size")
    for name, value in (("ref", e.ref), ("version_id", e.version_id), ("digest", e.digest)):
        if len(value.encode()) > MAX_FIELD:
            raise InvalidArgument(f"entry {e.path!r}: {name} is longer than {MAX_FIELD} bytes", field=f"{field}.{name}")
    validate.check_identifier(e.ref, f"{field}.ref", "reference")
    validate.check_identifier(e.version_id, f"{field}.version_id", "version id")
    if e.ref:
        validate.check_identifier(e.digest, f"{field}.digest", "digest")
        # Only an unchecksummed reference's digest (its URI, as in W&B) holds
        # ':'; elsewhere a ':' could move the path/digest split of the
        # artifact digest's "path:digest" line.
        if ":" in e.digest and not (e.algorithm == "none" and e.digest == e.ref):
            raise InvalidArgument(f"entry {e.path!r}: digest {e.digest!r} holds ':'", field=f"{field}.digest")
        scheme = urlsplit(e.ref).scheme
        if scheme not in REF_SCHEMES:
            raise InvalidArgument(
                f"entry {e.path!r}: reference scheme must be one of {', '.join(REF_SCHEMES)}",
                field=f"{field}.ref",
            )
        if e.algorithm not in REF_ALGORITHMS:
            raise InvalidArgument(
                f"entry {e.path!r}: unknown digest algorithm {e.algorithm!r}",
                field=f"{field}.algorithm",
            )
    else:
        check_blob_id(e.algorithm, e.digest, f"{field}.digest")
    if e.extra:
        validate.parse_json(e.extra, f"{field}.extra_json", max_bytes=MAX_EXTRA, object_only=True)


def _inline_blob(e: ManifestEntry, content: bytes, i: int, total: int) -> tuple[BlobId, bytes]:
    field = f"entries[{i}].content"
    if e.ref:
        raise InvalidArgument(f"entry {e.path!r}: a reference entry carries no content", field=field)
    if len(content) != e.size:
        raise InvalidArgument(f"entry {e.path!r}: {len(content)} bytes of content, size says {e.size}", field=field)
    if len(content) > MAX_INLINE_BLOB:
        raise InvalidArgument(
            f"entry {e.path!r}: inline content is limited to {MAX_INLINE_BLOB} bytes; upload it with UploadBlob",
            field=field,
        )
    if total > MAX_INLINE_TOTAL:
        raise InvalidArgument(
            f"inline content is limited to {MAX_INLINE_TOTAL} bytes per manifest; upload the rest with UploadBlob",
            field=field,
        )
    return BlobId(e.algorithm, e.digest), content


class _Hashed:
    """A file that hashes what is written to it: the manifest id, without reading the file again."""

    def __init__(self, f: IO[bytes]) -> None:
        self._f = f
        self._sha = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self._sha.update(data)
        return self._f.write(data)

    def sha256(self) -> str:
        return self._sha.hexdigest()


@dataclass(frozen=True)
class _Segment:
    """One sorted source of a manifest in the staging dir."""

    path: str
    summary: ManifestSummary
    manifest_id: str  # SHA-256 of the file
    stored: bool = False  # an included manifest: already in the store


def _merge(segments: list[str], out: _Hashed, digest_algorithm: str) -> ManifestSummary:
    """K-way merge of sorted segments into one manifest; duplicates are refused.

    The writer checks every path natively (check_paths): included manifests
    and streamed entries were checked when written, but a listed segment is
    checked here too at no extra pass, and the merge is where a path from
    two sources first meets the order and duplicate rules.
    """
    with contextlib.ExitStack() as stack:
        sources = [_Blocks(ManifestReader(stack.enter_context(open(p, "rb")))) for p in segments]
        writer = ManifestWriter(out, digest_algorithm, check_paths=True)
        try:
            _merge_runs([s for s in sources if s.head is not None], writer)
        except ManifestError as exc:
            raise InvalidArgument(str(exc), field="references") from None
        return writer.close()


def _key(e: ManifestEntry) -> bytes:
    return e.path.encode()  # manifests sort by the UTF-8 bytes of the path


class _Blocks:
    """One sorted segment, a decoded block at a time, with a cursor into the block."""

    def __init__(self, reader: ManifestReader) -> None:
        self._blocks = reader.batches()
        self.block: list[ManifestEntry] = []
        self.at = 0
        self.head: bytes | None = None
        self._next_block()

    def _next_block(self) -> None:
        self.block, self.at = next(self._blocks, []), 0
        self.head = _key(self.block[0]) if self.block else None

    def take(self, end: int, writer: ManifestWriter) -> None:
        """Writes the block's entries up to ``end`` and moves on."""
        writer.add_many(self.block[self.at : end])
        self.at = end
        if self.at == len(self.block):
            self._next_block()
        else:
            self.head = _key(self.block[self.at])


def _merge_runs(sources: list[_Blocks], writer: ManifestWriter) -> None:
    """Copies runs, not entries: from the source with the smallest head, every
    entry below the other sources' smallest head goes in one ``add_many``.

    The usual merge is one listed reference of millions of entries and a few
    files logged with it: nearly every entry goes in a run of a whole block.
    Against an entry-at-a-time heapq.merge: 2.2 s instead of 3.1 s per
    million entries (median of 5, load 3); decoding and encoding are the
    rest. An equal head is copied alone, so the writer sees the duplicate
    and refuses it.
    """
    while sources:
        sources.sort(key=lambda s: s.head or b"")
        first = sources[0]
        if len(sources) == 1:
            end = len(first.block)
        else:
            bound = sources[1].head
            assert bound is not None  # sources hold only segments with entries left
            end = bisect.bisect_left(first.block, bound, lo=first.at, key=_key)
            end = max(end, first.at + 1)
        first.take(end, writer)
        if first.head is None:
            sources.pop(0)


async def _empty() -> AsyncIterator[Iterable[EntryIn]]:
    return
    yield  # pragma: no cover - makes this an async generator


class _Spool:
    """A write-only file for one manifest: in memory until ``_SPOOL_MEMORY``,
    then a file in the staging dir; hashes what it is given (the manifest id)."""

    def __init__(self, staging: Staging) -> None:
        self._staging = staging
        self._parts: list[bytes] = []
        self._size = 0
        self._path: str | None = None
        self._file: IO[bytes] | None = None
        self._sha = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self._sha.update(data)
        if self._file is None and self._size + len(data) > _SPOOL_MEMORY:
            self._path = self._staging.new_file("manifest-")
            self._file = open(self._path, "wb")  # noqa: SIM115 - closed by close()
            with storage_errors(self._path):
                self._file.writelines(self._parts)
            self._parts = []
        if self._file is None:
            self._parts.append(bytes(data))
        else:
            with storage_errors(self._path or ""):
                self._file.write(data)
        self._size += len(data)
        return len(data)

    def sha256(self) -> str:
        return self._sha.hexdigest()

    async def save(self, store: BlobStore, key: str) -> None:
        if self._file is None:
            await store.put_bytes(key, b"".join(self._parts))
        else:
            assert self._path is not None
            with storage_errors(self._path):
                self._file.close()
            await store.put_staged(key, self._path)

    def close(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
        if self._path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._path)


class Manifests:
    def __init__(
        self,
        store: BlobStore,
        blobs: Blobs,
        secret: bytes,
        references: ReferencePolicy | None = None,
        reading: ManifestReading | None = None,
    ):
        self._store = store
        self._blobs = blobs
        self._secret = secret
        self._references = references or ReferencePolicy()
        # The read side (reading.py); shared, so its caches serve every caller.
        self.reading = reading or ManifestReading(store)

    async def create(
        self,
        entity: str,
        digest_algorithm: str,
        batches: AsyncIterator[Iterable[EntryIn]],
        references: list[ReferenceSpec] | None = None,
        include_manifests: list[str] | None = None,
        progress: ListingProgress | None = None,
    ) -> StoredManifest:
        """Stores the streamed entries merged with included manifests and listed references.

        Without references or included manifests the streamed entries are
        the manifest. Otherwise each source is a sorted segment in a
        temporary file; one segment is the manifest itself, several are
        merged. One included manifest and nothing else is reused as is.

        The build's time is taken before any blob is checked: every key
        the manifest relies on is refreshed (the age rule) at or after it,
        so a commit within grace/2 of it needs only keys the collector
        spares (docs/gc.md).
        """
        started_ms = int(time.time() * 1000)
        if digest_algorithm not in ALGORITHMS:
            raise InvalidArgument("digest_algorithm must be 'md5' or 'xxh3_128'", field="header.digest_algorithm")
        references = references or []
        # Naming a manifest twice includes it once (not a duplicate of every path).
        include_manifests = list(dict.fromkeys(include_manifests or []))
        if len(include_manifests) > MAX_INCLUDED:
            raise InvalidArgument(
                f"at most {MAX_INCLUDED} distinct manifests per header, not {len(include_manifests)}",
                field="header.include_manifests",
            )
        for i, spec in enumerate(references):
            self._references.check(spec, i)
        keys = []
        for i, m in enumerate(include_manifests):
            try:
                keys.append(manifest_key(entity, m))
            except InvalidArgument as e:
                raise InvalidArgument(e.message, field=f"header.include_manifests[{i}]") from None
        staging = self._store.staging
        if not references and not include_manifests:
            spool = _Spool(staging)
            try:
                summary = await self._write_streamed(entity, digest_algorithm, batches, spool)
                manifest_id = spool.sha256()
                key = manifest_key(entity, manifest_id)
                if not await self._blobs.keep(key):
                    await spool.save(self._store, key)
            finally:
                spool.close()
            return self._signed(entity, manifest_id, summary, started_ms)
        tmp = staging.new_dir("manifest-")
        try:
            path = os.path.join(tmp, "streamed")
            with storage_errors(path), open(path, "wb") as f:
                out = _Hashed(f)
                summary = await self._write_streamed(entity, digest_algorithm, batches, out)
            streamed = _Segment(path, summary, out.sha256())
            segments = [streamed] if summary.count else []
            for i, key in enumerate(keys):
                segments.append(await self._included(entity, tmp, i, key, include_manifests[i]))
            for i, spec in enumerate(references):
                segments.append(await self._listed(tmp, i, spec, digest_algorithm, progress))
            segments = [seg for seg in segments if seg.summary.count] or [streamed]
            final = segments[0]
            if len(segments) > 1 or final.summary.digest_algorithm != digest_algorithm:
                path = os.path.join(tmp, "merged")
                with storage_errors(path), open(path, "wb") as f:
                    out = _Hashed(f)
                    summary = await asyncio.to_thread(_merge, [seg.path for seg in segments], out, digest_algorithm)
                final = _Segment(path, summary, out.sha256())
            key = manifest_key(entity, final.manifest_id)
            if not final.stored and not await self._blobs.keep(key):
                await self._store.put_staged(key, final.path)
        finally:
            await asyncio.to_thread(shutil.rmtree, tmp, True)
        return self._signed(entity, final.manifest_id, final.summary, started_ms)

    async def _included(self, entity: str, tmp: str, i: int, key: str, manifest_id: str) -> _Segment:
        """A stored manifest of the entity, as a segment (read in place from a local store).

        The new manifest relies on it as on streamed entries, so the age rule
        applies alike: the included manifest is kept (it may be reused as
        is) and its uploaded files' blobs are checked and refreshed.
        """
        field = f"header.include_manifests[{i}]"
        missing = NotFound(f"manifest {manifest_id} not found", field=field)
        if not await self._blobs.keep(key):
            raise missing
        path = self._store.local_path(key)
        if path is None:
            path = os.path.join(tmp, f"included{i}")
            try:
                await self._store.get_to_file(key, Path(path))
            except NotFound:
                raise missing from None
        try:
            summary = await self._refresh_blobs(entity, path, manifest_id, field)
        except FileNotFoundError:
            raise missing from None
        except ManifestError as exc:
            raise FailedPrecondition(f"stored manifest {manifest_id} is corrupt: {exc}") from None
        return _Segment(path, summary, manifest_id, stored=True)

    async def _refresh_blobs(self, entity: str, path: str, manifest_id: str, field: str) -> ManifestSummary:
        """Runs an included manifest's uploaded files through ``Blobs.missing``,
        a block of entries at a time (one round of I/O each, as a streamed
        batch); refuses the build if a blob is gone. Returns its summary."""
        with open(path, "rb") as f:
            reader = await asyncio.to_thread(ManifestReader, f)
            batches = reader.batches()
            while (batch := await asyncio.to_thread(next, batches, None)) is not None:
                gone = await self._blobs.missing(entity, [BlobId(e.algorithm, e.digest) for e in batch if not e.ref])
                if gone:
                    raise FailedPrecondition(
                        f"included manifest {manifest_id} names blob {gone[0].algorithm}:{gone[0].digest}, "
                        "which is no longer stored; log the artifact again with its files",
                        field=field,
                        reason=ErrorReason.BLOB_MISSING,
                    )
        assert reader.summary is not None
        return reader.summary

    async def _listed(
        self, tmp: str, i: int, spec: ReferenceSpec, digest_algorithm: str, progress: ListingProgress | None
    ) -> _Segment:
        """One reference listed into a segment. The native writer checks every
        path as it writes (check_paths), so nothing reads the segment again."""
        path = os.path.join(tmp, f"ref{i}")
        with storage_errors(path), open(path, "wb") as f:
            out = _Hashed(f)
            writer = ManifestWriter(out, digest_algorithm, check_paths=True)
            if progress is not None:
                progress.listing(writer)
            try:
                await self._references.write(spec, writer)
            except ManifestError as exc:
                raise InvalidArgument(f"reference {spec.uri}: {exc}", field=f"header.references[{i}].uri") from None
            summary = writer.close()
        if progress is not None:
            progress.listed(summary.count, summary.total_size)
        if not summary.count and not spec.allow_empty:
            raise FailedPrecondition(
                f"no objects under {spec.uri}; check the prefix (allow_empty accepts an empty reference)",
                field=f"header.references[{i}].uri",
            )
        return _Segment(path, summary, out.sha256())

    async def resolve(
        self, entity: str, digest_algorithm: str, references: list[ReferenceSpec], progress: ListingProgress
    ) -> StoredManifest:
        """The stored manifest of everything ``references`` list (ResolveReferences' work)."""
        if not references:
            raise InvalidArgument("at least one reference is required", field="header.references")
        return await self.create(entity, digest_algorithm, _empty(), references, progress=progress)

    def _signed(self, entity: str, manifest_id: str, summary: ManifestSummary, started_ms: int) -> StoredManifest:
        # Listed references add sizes too; the sum is a bigint in the metadata.
        validate.check_size(summary.total_size, "entries.size")
        fields = (
            entity,
            manifest_id,
            summary.digest,
            summary.digest_algorithm,
            summary.total_size,
            summary.count,
        )
        token = sign_manifest(self._secret, *fields, started_ms)
        return StoredManifest(*fields, token=token, create_time_unix_ms=started_ms)

    async def _write_streamed(
        self,
        entity: str,
        digest_algorithm: str,
        batches: AsyncIterator[Iterable[EntryIn]],
        out: IO[bytes] | _Spool | _Hashed,
    ) -> ManifestSummary:
        writer = ManifestWriter(out, digest_algorithm)
        i = 0
        inline_total = 0
        size_total = 0
        async for batch in batches:
            uploaded = []
            inline: list[tuple[BlobId, bytes]] = []
            for e, content in batch:
                _check_entry(e, i)
                size_total = validate.add_int64(size_total, e.size, f"entries[{i}].size")
                try:
                    writer.add(*e)
                except ManifestError as exc:
                    raise InvalidArgument(str(exc), field=f"entries[{i}].path") from None
                # An empty file is always "inline": its bytes are known.
                if content or (e.size == 0 and not e.ref):
                    inline_total += len(content)
                    inline.append(_inline_blob(e, content, i, inline_total))
                elif not e.ref:
                    uploaded.append(e)
                i += 1
            if inline:
                await self._blobs.put_inline(entity, inline, "entries")
            # One concurrent existence check per batch, not one await per entry.
            ids = [check_blob_id(e.algorithm, e.digest) for e in uploaded]
            missing = set(await self._blobs.missing(entity, ids))
            for e, blob in zip(uploaded, ids):
                if blob in missing:
                    raise FailedPrecondition(
                        f"entry {e.path!r}: blob {e.algorithm}:{e.digest} was not uploaded",
                        field="entries.digest",
                        reason=ErrorReason.BLOB_MISSING,
                    )
        return writer.close()

    async def contains_blob(self, entity: str, manifest_id: str, blob: BlobId) -> bool:
        """Whether the manifest lists ``blob`` as an uploaded file (see ``ManifestReading``)."""
        return await self.reading.contains_blob(entity, manifest_id, blob)

    def read(self, entity: str, manifest_id: str) -> AsyncIterator[list[ManifestEntry]]:
        """All entries of a stored manifest, a block at a time (see ``ManifestReading``)."""
        return self.reading.read(entity, manifest_id)


__all__ = ["Manifests", "StoredManifest", "manifest_key"]
