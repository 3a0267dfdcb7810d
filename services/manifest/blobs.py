"""Content-addressed blobs: verified on upload, deduplicated per entity.

A blob's key is derived from its digest, so the same bytes uploaded twice
by one entity are stored once. The server recomputes the digest of what it
receives and refuses bytes that do not match the claim, so a manifest entry
always names bytes that really have that digest.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from depot.core.hashing import ALGORITHMS, Hasher, new_hasher
from depot.native import hash_bytes
from depot.services.common import otel_steps
from depot.services.common.errors import ErrorReason, FailedPrecondition, InvalidArgument, NotFound

from .staging import storage_errors
from .store import BatchTooLarge, BlobStore, write_all

MAX_BLOB = 5 * 1024**3  # one S3 PutObject
# Small files may be sent inline with their manifest entry (see CreateManifest).
MAX_INLINE_BLOB = 64 * 1024
# BatchUpdateBlobs / BatchReadBlobs (manifest.proto): per call, bounded so a
# batch is one message well under gRPC's 16 MiB cap and one round of I/O.
MAX_BATCH_BLOBS = 1000
MAX_BATCH_BYTES = 8 * 1024 * 1024
# The GC's grace period when the server sets none (DEPOT_GRACE_PERIOD_S):
# the blob collector never deletes a key modified more recently than this.
DEFAULT_GC_GRACE_S = 7 * 24 * 3600.0
# Below this many bytes hashing and writing run on the event loop: a hop to
# a worker thread (~50 us) costs more than hashing 64 KiB with xxh3.
_HOP_MIN = 64 * 1024


@dataclass(frozen=True)
class BlobId:
    algorithm: str
    digest: str  # standard base64 of the raw digest

    def hex(self) -> str:
        return base64.b64decode(self.digest).hex()


def check_blob_id(algorithm: str, digest: str, field: str = "digest") -> BlobId:
    if algorithm not in ALGORITHMS:
        raise InvalidArgument(
            f"{field}.algorithm: blob digest algorithm must be one of {', '.join(ALGORITHMS)}, not {algorithm!r}",
            field=f"{field}.algorithm",
        )
    try:
        raw = base64.b64decode(digest, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 16:
        raise InvalidArgument(
            f"{field}.digest: {digest!r} is not the base64 of a 16-byte {algorithm} digest",
            field=f"{field}.digest",
        )
    return BlobId(algorithm, digest)


def blob_key(entity: str, blob: BlobId) -> str:
    h = blob.hex()
    return f"{entity}/blobs/{blob.algorithm}/{h[:2]}/{h}"


def _check_digest(blob: BlobId, hasher: Hasher, what: str) -> None:
    _check_raw_digest(blob, hasher.digest(), what, "digest", "nothing was stored")


def _check_raw_digest(blob: BlobId, raw: bytes, what: str, field: str, outcome: str) -> None:
    actual = base64.b64encode(raw).decode()
    if actual != blob.digest:
        raise FailedPrecondition(
            f"{what} {blob.algorithm} digest {actual}, not the claimed {blob.digest}; {outcome}",
            field=field,
            reason=ErrorReason.DIGEST_MISMATCH,
        )


def _verify_all(blobs: list[tuple[BlobId, bytes]], field: str) -> None:
    """Raises DIGEST_MISMATCH naming the first blob whose bytes are not its digest."""
    for i, (blob, data) in enumerate(blobs):
        (raw,) = hash_bytes(data, (blob.algorithm,))
        _check_raw_digest(
            blob,
            raw,
            f"{field}[{i}]: {len(data)} bytes have",
            f"{field}[{i}].data",
            "nothing of the batch was stored",
        )


async def _off_loop(nbytes: int, fn: Callable[[], None]) -> None:
    """Runs ``fn`` (hashing or writing ``nbytes``) in a worker thread unless it is small."""
    if nbytes < _HOP_MIN:
        fn()
    else:
        await asyncio.to_thread(fn)


def _absorb(fd: int, hasher: Hasher, chunk: bytes | memoryview) -> None:
    # Both release the GIL on large buffers (hashlib and xxhash hash outside
    # it, os.write is a syscall), so the loop keeps receiving meanwhile.
    hasher.update(chunk)
    write_all(fd, chunk)


class Blobs:
    """Blobs of every entity in one store.

    The dedup age rule (docs/gc.md): whenever a stored key is relied on
    instead of written — a blob reported present, an upload or a manifest
    found already stored — it must not be older than half the GC's grace
    period, or it is touched first (local: utime; S3: a copy onto itself).
    A key that vanishes before the touch is answered as missing, so the
    client sends the bytes again. So a key handed out as present cannot be
    swept for another grace/2, longer than any commit that relies on it.
    """

    def __init__(self, store: BlobStore, gc_grace_s: float = DEFAULT_GC_GRACE_S):
        self._store = store
        self._refresh_after_s = gc_grace_s / 2

    async def _kept(self, keys: list[str]) -> list[bool]:
        return await self._store.refresh_many(keys, time.time() - self._refresh_after_s)

    async def keep(self, key: str) -> bool:
        """Whether ``key`` is stored, refreshed by the age rule (for a manifest found already stored)."""
        return (await self._kept([key]))[0]

    async def missing(self, entity: str, blobs: list[BlobId]) -> list[BlobId]:
        """The blobs not stored yet, in the order given (duplicates checked once).

        One round of I/O: a worker thread's stats for a local store,
        concurrent HEAD requests (bounded) on S3; an old blob is refreshed
        (the age rule) or reported missing.
        """
        unique = list(dict.fromkeys(blobs))
        found = dict(zip(unique, await self._kept([blob_key(entity, b) for b in unique])))
        return [b for b in blobs if not found[b]]

    async def exists(self, entity: str, blob: BlobId) -> bool:
        return await self._store.exists(blob_key(entity, blob))

    async def upload(self, entity: str, blob: BlobId, size: int, chunks: AsyncIterator[bytes | memoryview]) -> bool:
        """Stores the bytes if they hash to ``blob``; False when already stored.

        Each chunk is hashed and written in a worker thread while the event
        loop receives the next one (one chunk in flight, so memory stays at
        two chunks whatever the blob's size).
        """
        if size < 0 or size > MAX_BLOB:
            raise InvalidArgument(f"blob size must be between 0 and {MAX_BLOB}", field="size")
        h = new_hasher(blob.algorithm)
        received = 0
        # Staged beside the blobs (see staging.py); put_staged consumes it.
        path = self._store.staging.new_file("upload-")
        try:
            with storage_errors(path):
                fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
                writing: Awaitable[None] | None = None
                try:
                    async for chunk in chunks:
                        received += len(chunk)
                        if received > size:
                            raise InvalidArgument(f"received more than the declared {size} bytes", field="size")
                        if writing is not None:
                            await writing
                            writing = None
                        if len(chunk) < _HOP_MIN:
                            _absorb(fd, h, chunk)
                        else:
                            writing = asyncio.ensure_future(asyncio.to_thread(_absorb, fd, h, chunk))
                    if writing is not None:
                        await writing
                        writing = None
                finally:
                    if writing is not None:
                        # Cut short: let the thread finish before its fd closes.
                        with contextlib.suppress(BaseException):
                            await asyncio.shield(writing)
                    os.close(fd)
            if received != size:
                raise InvalidArgument(f"received {received} bytes, declared {size}", field="size")
            _check_digest(blob, h, "uploaded bytes have")
            otel_steps.bytes_hashed.add(received)
            key = blob_key(entity, blob)
            if await self.keep(key):
                return False
            with otel_steps.step("blob.store", {"depot.blob.size": size}):
                await self._store.put_staged(key, path)
            otel_steps.bytes_stored.add(size)
            return True
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    async def put_inline(self, entity: str, blobs: list[tuple[BlobId, bytes]], field: str) -> None:
        """Stores small blobs sent with their manifest entries, after checking
        every digest (so a bad one stores nothing of the batch)."""
        await self._put_verified(entity, blobs, field)

    async def put_batch(self, entity: str, blobs: list[tuple[BlobId, bytes]]) -> list[bool]:
        """BatchUpdateBlobs: stores every blob whose digest its bytes have, or
        none if one does not; per blob, False when it was already stored (or
        came earlier in the batch)."""
        if len(blobs) > MAX_BATCH_BLOBS:
            raise InvalidArgument(
                f"at most {MAX_BATCH_BLOBS} blobs per BatchUpdateBlobs call, not {len(blobs)}", field="blobs"
            )
        total = sum(len(data) for _, data in blobs)
        if total > MAX_BATCH_BYTES:
            raise InvalidArgument(
                f"the blobs hold {total} bytes, over the {MAX_BATCH_BYTES} of one BatchUpdateBlobs call; "
                "send fewer per call, and large blobs with UploadBlob",
                field="blobs",
            )
        return await self._put_verified(entity, blobs, "blobs")

    async def _put_verified(self, entity: str, blobs: list[tuple[BlobId, bytes]], field: str) -> list[bool]:
        size = sum(len(d) for _, d in blobs)
        with otel_steps.step("blob.hash_batch", {"depot.blob.count": len(blobs), "depot.blob.bytes": size}):
            await _off_loop(size, lambda: _verify_all(blobs, field))
        otel_steps.bytes_hashed.add(size)
        unique: dict[BlobId, bytes] = {}
        for blob, data in blobs:
            unique.setdefault(blob, data)
        with otel_steps.step("blob.store_batch", {"depot.blob.count": len(unique)}):
            stored = await self._store.put_many([(blob_key(entity, b), d) for b, d in unique.items()])
        fresh = {b for b, created in zip(unique, stored) if created}
        otel_steps.bytes_stored.add(sum(len(d) for b, d in unique.items() if b in fresh))
        await self._keep_found(entity, [(b, d) for (b, d), created in zip(unique.items(), stored) if not created])
        out = []
        for blob, _ in blobs:
            out.append(blob in fresh)
            fresh.discard(blob)  # a repeat in the batch was not created by its own entry
        return out

    async def _keep_found(self, entity: str, found: list[tuple[BlobId, bytes]]) -> None:
        """The age rule for blobs a batch found already stored: refreshed, or written again if swept meanwhile."""
        if not found:
            return
        kept = await self._kept([blob_key(entity, b) for b, _ in found])
        gone = [(blob_key(entity, b), d) for (b, d), ok in zip(found, kept) if not ok]
        if gone:
            await self._store.put_many(gone)

    async def read_batch(self, entity: str, blobs: list[BlobId]) -> list[bytes]:
        """BatchReadBlobs: every blob's bytes in one round of I/O, in order."""
        if len(blobs) > MAX_BATCH_BLOBS:
            raise InvalidArgument(
                f"at most {MAX_BATCH_BLOBS} blobs per BatchReadBlobs call, not {len(blobs)}", field="digests"
            )
        try:
            found = await self._store.get_many([blob_key(entity, b) for b in blobs], MAX_BATCH_BYTES)
        except BatchTooLarge:
            raise InvalidArgument(
                f"the blobs' sizes add up to more than the {MAX_BATCH_BYTES} bytes of one BatchReadBlobs call; "
                "ask for fewer per call, and read large blobs with ReadBlob",
                field="digests",
            ) from None
        out = []
        for i, (blob, data) in enumerate(zip(blobs, found)):
            if data is None:
                raise NotFound(f"blob digests[{i}] ({blob.algorithm} {blob.digest}) not found", field=f"digests[{i}]")
            out.append(data)
        return out

    def read(self, entity: str, blob: BlobId) -> AsyncIterator[bytes]:
        return self._store.read(blob_key(entity, blob))
