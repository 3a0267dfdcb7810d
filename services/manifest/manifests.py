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
import contextlib
import hashlib
import heapq
import os
import shutil
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
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
from depot.services.common.errors import ErrorReason, FailedPrecondition, InvalidArgument
from depot.services.common.validate import check_entry_path

from .blobs import MAX_INLINE_BLOB, BlobId, Blobs, check_blob_id
from .reading import ManifestReading, manifest_key
from .references import ReferencePolicy, ReferenceSpec
from .staging import Staging, storage_errors
from .store import BlobStore

REF_SCHEMES = ("s3", "gs", "file", "http", "https")
REF_ALGORITHMS = ("etag", "md5", "sha256", "xxh3_128", "none")
MAX_EXTRA = 16 * 1024
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


def _check_entry(e: ManifestEntry, i: int) -> None:
    field = f"entries[{i}]"
    check_entry_path(e.path, f"{field}.path")
    if e.size < 0:
        raise InvalidArgument(f"entry {e.path!r} has a negative size", field=f"{field}.size")
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


def _validated(entries: Iterable[ManifestEntry]) -> Iterator[ManifestEntry]:
    """Entries listed from a store: keys like ``a//b`` or ``../x`` are refused."""
    for i, e in enumerate(entries):
        check_entry_path(e.path, f"references.entries[{i}].path")
        yield e


def _sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _merge(segments: list[str], out: IO[bytes], digest_algorithm: str) -> ManifestSummary:
    """K-way merge of sorted segments into one manifest; duplicates are refused."""
    with contextlib.ExitStack() as stack:
        readers = [iter(ManifestReader(stack.enter_context(open(p, "rb")))) for p in segments]
        writer = ManifestWriter(out, digest_algorithm)
        try:
            for e in _validated(heapq.merge(*readers, key=lambda e: e.path.encode())):
                writer.add(*e)
        except ManifestError as exc:
            raise InvalidArgument(str(exc), field="references") from None
        return writer.close()


def _check_listed(path: str) -> None:
    with open(path, "rb") as f:
        for _ in _validated(ManifestReader(f)):
            pass


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
    ) -> StoredManifest:
        """Stores the streamed entries merged with the listed references.

        Without references the streamed entries are the manifest. With them,
        each source is first written as a sorted segment in a temporary
        file; one segment is the manifest itself, several are merged.
        """
        if digest_algorithm not in ALGORITHMS:
            raise InvalidArgument("digest_algorithm must be 'md5' or 'xxh3_128'", field="header.digest_algorithm")
        references = references or []
        for i, spec in enumerate(references):
            self._references.check(spec, i)
        staging = self._store.staging
        if not references:
            spool = _Spool(staging)
            try:
                summary = await self._write_streamed(entity, digest_algorithm, batches, spool)
                manifest_id = spool.sha256()
                key = manifest_key(entity, manifest_id)
                if not await self._store.exists(key):
                    await spool.save(self._store, key)
            finally:
                spool.close()
            return self._signed(entity, manifest_id, summary)
        tmp = staging.new_dir("manifest-")
        try:
            streamed = os.path.join(tmp, "streamed")
            with storage_errors(streamed), open(streamed, "wb") as f:
                summary = await self._write_streamed(entity, digest_algorithm, batches, f)
            segments = [(streamed, summary)] if summary.count or not references else []
            for i, spec in enumerate(references):
                seg = os.path.join(tmp, f"ref{i}")
                with storage_errors(seg), open(seg, "wb") as f:
                    writer = ManifestWriter(f, digest_algorithm)
                    await self._references.write(spec, writer)
                    ref_summary = writer.close()
                if ref_summary.count:
                    segments.append((seg, ref_summary))
            if not segments:  # references that listed nothing
                segments = [(streamed, summary)]
            if len(segments) == 1:
                final, summary = segments[0]
                if final != streamed:
                    await asyncio.to_thread(_check_listed, final)
            else:
                final = os.path.join(tmp, "merged")
                with storage_errors(final), open(final, "wb") as f:
                    summary = await asyncio.to_thread(_merge, [p for p, _ in segments], f, digest_algorithm)
            manifest_id = await asyncio.to_thread(_sha256_file, final)
            key = manifest_key(entity, manifest_id)
            if not await self._store.exists(key):
                await self._store.put_staged(key, final)
        finally:
            await asyncio.to_thread(shutil.rmtree, tmp, True)
        return self._signed(entity, manifest_id, summary)

    def _signed(self, entity: str, manifest_id: str, summary: ManifestSummary) -> StoredManifest:
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
        return StoredManifest(*fields, token=sign_manifest(self._secret, *fields))

    async def _write_streamed(
        self,
        entity: str,
        digest_algorithm: str,
        batches: AsyncIterator[Iterable[EntryIn]],
        out: IO[bytes] | _Spool,
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
