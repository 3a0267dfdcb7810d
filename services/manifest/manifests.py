"""Building and reading manifests stored as blobs (domain; no grpc).

A manifest is written with the native codec to a temporary file as entries
arrive (in strictly increasing path order), then stored under its SHA-256,
so a manifest of millions of entries never sits in memory. The returned
summary is signed so the metadata service can trust the digest and size.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

from depot.native import ManifestEntry, ManifestError, ManifestReader, ManifestWriter
from depot.services.common.credentials import sign_manifest
from depot.services.common.entry_paths import check_entry_path
from depot.services.common.errors import FailedPrecondition, InvalidArgument, NotFound

from .blobs import BLOB_ALGORITHMS, Blobs, check_blob_id
from .store import BlobStore

REF_SCHEMES = ("s3", "gs", "file", "http", "https")
REF_ALGORITHMS = ("etag", "md5", "sha256", "xxh3_128", "none")
MAX_EXTRA = 16 * 1024
_MANIFEST_ID_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class StoredManifest:
    entity: str
    manifest_id: str
    digest: str
    digest_algorithm: str
    size: int
    file_count: int
    token: str


def manifest_key(entity: str, manifest_id: str) -> str:
    if len(manifest_id) != 64 or not set(manifest_id) <= _MANIFEST_ID_HEX:
        raise InvalidArgument(f"invalid manifest id {manifest_id!r}", field="manifest_id")
    return f"{entity}/manifests/{manifest_id[:2]}/{manifest_id}"


class _HashingFile:
    """A write-only file wrapper that keeps a SHA-256 of what passes through."""

    def __init__(self, f: IO[bytes]):
        self._f = f
        self.sha = hashlib.sha256()

    def write(self, b: bytes) -> int:
        self.sha.update(b)
        return self._f.write(b)


def _check_entry(e: ManifestEntry, i: int) -> None:
    field = f"entries[{i}]"
    check_entry_path(e.path, f"{field}.path")
    if e.size < 0:
        raise InvalidArgument(f"entry {e.path!r} has a negative size", field=f"{field}.size")
    if e.ref:
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
        if len(e.extra) > MAX_EXTRA:
            raise InvalidArgument(f"entry {e.path!r}: extra is too large", field=f"{field}.extra")
        try:
            if not isinstance(json.loads(e.extra), dict):
                raise ValueError
        except ValueError:
            raise InvalidArgument(
                f"entry {e.path!r}: extra must be a JSON object", field=f"{field}.extra"
            ) from None


class Manifests:
    def __init__(self, store: BlobStore, blobs: Blobs, secret: bytes):
        self._store = store
        self._blobs = blobs
        self._secret = secret

    async def create(
        self, entity: str, digest_algorithm: str, batches: AsyncIterator[Iterable[ManifestEntry]]
    ) -> StoredManifest:
        if digest_algorithm not in ("md5", "xxh3_128"):
            raise InvalidArgument(
                "digest_algorithm must be 'md5' or 'xxh3_128'", field="header.digest_algorithm"
            )
        with tempfile.NamedTemporaryFile(prefix="manifest-") as f:
            out = _HashingFile(f)
            writer = ManifestWriter(out, digest_algorithm)  # type: ignore[arg-type]
            i = 0
            async for batch in batches:
                uploaded = []
                for e in batch:
                    _check_entry(e, i)
                    try:
                        writer.add(*e)
                    except ManifestError as exc:
                        raise InvalidArgument(str(exc), field=f"entries[{i}].path") from None
                    if not e.ref:
                        uploaded.append(e)
                    i += 1
                for e in uploaded:
                    blob = check_blob_id(e.algorithm, e.digest)
                    if not await self._blobs.exists(entity, blob):
                        raise FailedPrecondition(
                            f"entry {e.path!r}: blob {e.algorithm}:{e.digest} was not uploaded",
                            field="entries.digest",
                            reason="BLOB_MISSING",
                        )
            summary = writer.close()
            f.flush()
            manifest_id = out.sha.hexdigest()
            key = manifest_key(entity, manifest_id)
            if not await self._store.exists(key):
                await self._store.put_file(key, Path(f.name))
        fields = (
            entity,
            manifest_id,
            summary.digest,
            summary.digest_algorithm,
            summary.total_size,
            summary.count,
        )
        return StoredManifest(*fields, token=sign_manifest(self._secret, *fields))

    async def read(self, entity: str, manifest_id: str) -> AsyncIterator[list[ManifestEntry]]:
        key = manifest_key(entity, manifest_id)
        with tempfile.NamedTemporaryFile(prefix="manifest-read-") as f:
            try:
                await self._store.get_to_file(key, Path(f.name))
            except NotFound:
                raise NotFound(f"manifest {manifest_id} not found", field="manifest_id") from None
            with open(f.name, "rb") as inp:
                try:
                    for batch in ManifestReader(inp).batches():
                        yield batch
                except ManifestError as exc:
                    raise FailedPrecondition(f"stored manifest is corrupt: {exc}") from None


__all__ = ["Manifests", "StoredManifest", "manifest_key", "BLOB_ALGORITHMS"]
