"""Moving an artifact's bytes: uploads before a commit, downloads after, each verified.

Upload: the blobs the server lacks (FindMissingBlobs, then UploadBlob
streams), small files inline with the manifest, then PutManifest (or a
CreateManifest stream past one batch); the answer is the manifest service's
signed reference, which the commit carries. Download: every entry into a
temp file beside its destination, checked against its digest, then renamed
into place.
"""

from __future__ import annotations

import concurrent.futures
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from depot.manifest.v1 import manifest_pb2 as mpb
from depot.native import hash_bytes, hash_file

from ._client import Client
from ._exceptions import DepotError, DigestMismatchError
from ._manifest import Manifest, ManifestEntry, b64
from ._paths import safe_join
from ._references import (
    ReferenceCache,
    S3Fetcher,
    default_reference_cache,
    default_s3_fetcher,
    fetch_reference,
    local_copy_matches,
)

_CHUNK = 1 << 20
_BATCH = 1000
# Files this small ride inline in the manifest (the server's limits, see
# ManifestEntry.content) instead of costing FindMissingBlobs + UploadBlob.
_INLINE_FILE = 64 * 1024
_INLINE_TOTAL = 1024 * 1024


# -- upload ---------------------------------------------------------------------------


def store_manifest(client: Client, entity: str, manifest: Manifest, references: list[mpb.Reference]) -> mpb.ManifestRef:
    """Uploads the blobs the server lacks, then stores the manifest (small
    files inline, ``s3://`` references listed by the server)."""
    entries = manifest.sorted_entries()
    inline = _inline_contents(entries)
    _upload_missing(client, entity, [e for e in entries if not e.ref and e.path not in inline])
    header = mpb.ManifestHeader(entity=entity, digest_algorithm=manifest.digest_algorithm, references=references)
    if len(entries) <= _BATCH:
        entries_pb = [e._pb(inline.get(e.path, b"")) for e in entries]
        return client.call(client.manifest.PutManifest, mpb.PutManifestRequest(header=header, entries=entries_pb))

    def requests() -> Iterator[mpb.CreateManifestRequest]:
        yield mpb.CreateManifestRequest(header=header)
        for i in range(0, len(entries), _BATCH):
            batch = [e._pb(inline.get(e.path, b"")) for e in entries[i : i + _BATCH]]
            yield mpb.CreateManifestRequest(batch=mpb.EntryBatch(entries=batch))

    return client.upload(client.manifest.CreateManifest, requests)


def _inline_contents(entries: list[ManifestEntry]) -> dict[str, bytes]:
    """The bytes of the small files sent with the manifest, by entry path.

    Empty files count too: the server knows their bytes without any upload.
    """
    out: dict[str, bytes] = {}
    total = 0
    for e in entries:
        if e.ref or e.size > _INLINE_FILE or total + e.size > _INLINE_TOTAL:
            continue
        assert e.local_path is not None
        with open(e.local_path, "rb") as f:
            data = f.read(_INLINE_FILE + 1)
        # Hashing 64 KiB costs microseconds; a same-size edit is caught here,
        # with the file named, instead of by the server's check of the batch.
        if len(data) != e.size:
            raise DigestMismatchError(f"{e.local_path} changed size after it was added to the artifact", field=e.path)
        if b64(hash_bytes(data, (e.algorithm,))[0]) != e.digest:
            raise DigestMismatchError(
                f"{e.local_path} changed after it was added to the artifact: its digest is no longer {e.digest}",
                field=e.path,
            )
        out[e.path] = data
        total += e.size
    return out


def _upload_missing(client: Client, entity: str, entries: list[ManifestEntry]) -> None:
    unique: dict[tuple[str, str], ManifestEntry] = {}
    for e in entries:
        unique.setdefault((e.algorithm, e.digest), e)
    todo = list(unique.values())
    missing: list[ManifestEntry] = []
    for i in range(0, len(todo), _BATCH):
        chunk = todo[i : i + _BATCH]
        resp = client.call(
            client.manifest.FindMissingBlobs,
            mpb.FindMissingBlobsRequest(
                entity=entity,
                blobs=[mpb.BlobDigest(algorithm=e.algorithm, digest=e.digest) for e in chunk],
            ),
        )
        wanted = {(b.algorithm, b.digest) for b in resp.missing}
        missing += [e for e in chunk if (e.algorithm, e.digest) in wanted]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        for f in [pool.submit(_upload_one, client, entity, e) for e in missing]:
            f.result()


def _upload_one(client: Client, entity: str, e: ManifestEntry) -> None:
    local_path = e.local_path
    assert local_path is not None

    def requests() -> Iterator[mpb.UploadBlobRequest]:
        yield mpb.UploadBlobRequest(
            header=mpb.UploadBlobHeader(
                entity=entity,
                digest=mpb.BlobDigest(algorithm=e.algorithm, digest=e.digest),
                size=e.size,
            )
        )
        with open(local_path, "rb") as f:
            while chunk := f.read(_CHUNK):
                yield mpb.UploadBlobRequest(chunk=chunk)

    client.upload(client.manifest.UploadBlob, requests)


# -- download -------------------------------------------------------------------------


def read_manifest(client: Client, entity: str, manifest_id: str) -> Manifest:
    """The entries of a stored manifest, streamed from the manifest service."""
    req = mpb.ReadManifestRequest(entity=entity, manifest_id=manifest_id)

    def collect(batches: Iterator[mpb.EntryBatch]) -> dict[str, ManifestEntry]:
        # From scratch on each attempt: a retried read starts over.
        entries = {}
        for batch in batches:
            for e in batch.entries:
                entries[e.path] = ManifestEntry(
                    e.path, e.digest, e.algorithm, e.size, e.ref, e.version_id, e.extra_json
                )
        return entries

    return Manifest(client.read(client.manifest.ReadManifest, req, collect))


def download(
    client: Client, entity: str, entries: list[ManifestEntry], root: Path, allow_missing: bool, manifest_id: str
) -> None:
    """Fetches every entry into ``root``, eight at a time, each verified."""
    cache = default_reference_cache() if any(e.ref for e in entries) else None
    s3 = default_s3_fetcher()  # its client is built only if an s3:// entry is fetched
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        futures = [
            pool.submit(fetch_entry, client, entity, e, root, allow_missing, cache, s3, manifest_id) for e in entries
        ]
        for f in futures:
            f.result()


def _digest_of(path: Path, algorithm: str) -> str:
    (raw,) = hash_file(str(path), (algorithm,))
    return b64(raw)


def fetch_entry(
    client: Client,
    entity: str,
    e: ManifestEntry,
    root: Path,
    allow_missing: bool,
    cache: ReferenceCache | None = None,
    s3: S3Fetcher | None = None,
    manifest_id: str = "",
) -> None:
    """Downloads one entry into ``root`` (atomically) after verifying it.

    ``manifest_id`` lets a registry reader with no role on the logging team
    read the blobs of the linked version (and only those).
    """
    dest = safe_join(root, e.path)
    try:
        if dest.is_file() and local_copy_matches(e, dest):
            return
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=".depot-")
    except OSError as err:
        raise DepotError(f"{e.path}: cannot write under {dest.parent}: {err.strerror}", field=e.path) from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        if e.ref:
            if not fetch_reference(e, tmp, allow_missing=allow_missing, cache=cache, s3=s3):
                return
        else:
            req = mpb.ReadBlobRequest(
                entity=entity,
                digest=mpb.BlobDigest(algorithm=e.algorithm, digest=e.digest),
                manifest_id=manifest_id,
            )

            def write(chunks: Iterator[mpb.BlobChunk]) -> None:
                # "wb" truncates: a read retried after a restart starts over.
                with open(tmp, "wb") as out:
                    for chunk in chunks:
                        out.write(chunk.data)

            client.read(client.manifest.ReadBlob, req, write)
            if _digest_of(tmp, e.algorithm) != e.digest:
                raise DigestMismatchError(f"{e.path}: downloaded bytes do not match digest {e.digest}", field=e.path)
        try:
            os.replace(tmp, dest)
        except OSError as err:
            # A name this filesystem refuses (a component past its NAME_MAX),
            # or a directory where the file goes.
            raise DepotError(f"{e.path}: cannot write {dest}: {err.strerror or err}", field=e.path) from None
    finally:
        tmp.unlink(missing_ok=True)
