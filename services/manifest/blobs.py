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
from collections.abc import AsyncIterator
from dataclasses import dataclass

from depot.core.hashing import ALGORITHMS, Hasher, new_hasher
from depot.services.common.errors import ErrorReason, FailedPrecondition, InvalidArgument

from .staging import storage_errors
from .store import BlobStore

MAX_BLOB = 5 * 1024**3  # one S3 PutObject
EXISTS_CONCURRENCY = 32
# Small files may be sent inline with their manifest entry (see CreateManifest).
MAX_INLINE_BLOB = 64 * 1024


@dataclass(frozen=True)
class BlobId:
    algorithm: str
    digest: str  # standard base64 of the raw digest

    def hex(self) -> str:
        return base64.b64decode(self.digest).hex()


def check_blob_id(algorithm: str, digest: str, field: str = "digest") -> BlobId:
    if algorithm not in ALGORITHMS:
        raise InvalidArgument(
            f"blob digest algorithm must be one of {', '.join(ALGORITHMS)}, not {algorithm!r}",
            field=f"{field}.algorithm",
        )
    try:
        raw = base64.b64decode(digest, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 16:
        raise InvalidArgument(
            f"digest {digest!r} is not the base64 of a 16-byte {algorithm} digest",
            field=f"{field}.digest",
        )
    return BlobId(algorithm, digest)


def blob_key(entity: str, blob: BlobId) -> str:
    h = blob.hex()
    return f"{entity}/blobs/{blob.algorithm}/{h[:2]}/{h}"


def _check_digest(blob: BlobId, hasher: Hasher, what: str) -> None:
    actual = base64.b64encode(hasher.digest()).decode()
    if actual != blob.digest:
        raise FailedPrecondition(
            f"{what} {blob.algorithm} digest {actual}, not the claimed {blob.digest}; nothing was stored",
            field="digest",
            reason=ErrorReason.DIGEST_MISMATCH,
        )


class Blobs:
    def __init__(self, store: BlobStore):
        self._store = store

    async def missing(self, entity: str, blobs: list[BlobId]) -> list[BlobId]:
        """The blobs not stored yet, in the order given (duplicates checked once).

        Checks run concurrently, bounded: on S3 each one is a HEAD request.
        """
        unique = list(dict.fromkeys(blobs))
        gate = asyncio.Semaphore(EXISTS_CONCURRENCY)

        async def stored(b: BlobId) -> bool:
            async with gate:
                return await self._store.exists(blob_key(entity, b))

        found = dict(zip(unique, await asyncio.gather(*(stored(b) for b in unique))))
        return [b for b in blobs if not found[b]]

    async def exists(self, entity: str, blob: BlobId) -> bool:
        return await self._store.exists(blob_key(entity, blob))

    async def upload(self, entity: str, blob: BlobId, size: int, chunks: AsyncIterator[bytes]) -> bool:
        """Stores the bytes if they hash to ``blob``; False when already stored."""
        if size < 0 or size > MAX_BLOB:
            raise InvalidArgument(f"blob size must be between 0 and {MAX_BLOB}", field="size")
        h = new_hasher(blob.algorithm)
        received = 0
        # Staged beside the blobs (see staging.py); put_staged consumes it.
        path = self._store.staging.new_file("upload-")
        try:
            with storage_errors(path), open(path, "wb") as f:
                async for chunk in chunks:
                    received += len(chunk)
                    if received > size:
                        raise InvalidArgument(f"received more than the declared {size} bytes", field="size")
                    h.update(chunk)
                    f.write(chunk)
            if received != size:
                raise InvalidArgument(f"received {received} bytes, declared {size}", field="size")
            _check_digest(blob, h, "uploaded bytes have")
            key = blob_key(entity, blob)
            if await self._store.exists(key):
                return False
            await self._store.put_staged(key, path)
            return True
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    async def put_inline(self, entity: str, blobs: list[tuple[BlobId, bytes]], field: str) -> None:
        """Stores small blobs sent with their manifest entries, after checking
        every digest (so a bad one stores nothing of the batch)."""
        for blob, data in blobs:
            h = new_hasher(blob.algorithm)
            h.update(data)
            _check_digest(blob, h, f"{field}: inline content of {len(data)} bytes has")
        todo = dict(blobs)
        gate = asyncio.Semaphore(EXISTS_CONCURRENCY)

        async def put(blob: BlobId) -> None:
            async with gate:
                await self._store.put_bytes(blob_key(entity, blob), todo[blob])

        await asyncio.gather(*(put(b) for b in await self.missing(entity, list(todo))))

    def read(self, entity: str, blob: BlobId) -> AsyncIterator[bytes]:
        return self._store.read(blob_key(entity, blob))
