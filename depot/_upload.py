"""Moving an artifact's bytes up, before a commit.

The blobs the server lacks (FindMissingBlobs, then UploadBlob streams), small
files inline with the manifest, then PutManifest (or a CreateManifest stream
past one batch); the answer is the manifest service's signed reference,
which the commit carries.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterator

from depot.common.v1 import common_pb2
from depot.manifest.v1 import manifest_pb2 as mpb
from depot.native import hash_bytes

from ._client import Client
from ._exceptions import DigestMismatchError
from ._manifest import Manifest, ManifestEntry, b64
from ._resolve import OnProgress, TerminalProgress, resolve_references

_CHUNK = 1 << 20
_BATCH = 1000
# Files this small ride inline in the manifest (the server's limits, see
# ManifestEntry.content) instead of costing FindMissingBlobs + UploadBlob.
_INLINE_FILE = 64 * 1024
_INLINE_TOTAL = 1024 * 1024


def store_manifest(
    client: Client,
    entity: str,
    manifest: Manifest,
    references: list[mpb.Reference],
    on_progress: OnProgress | None = None,
) -> common_pb2.ManifestRef:
    """Uploads the blobs the server lacks, then stores the manifest (small
    files inline, ``s3://`` references listed by the server).

    The server lists references as a long-running operation followed
    without a call deadline (see ``_resolve``); ``on_progress(objects,
    bytes)`` sees its progress, by default a line on stderr when it is a
    terminal. Its stored manifest is the answer when there is nothing else,
    else it is merged with the entries (``include_manifests``).
    """
    entries = manifest.sorted_entries()
    included: list[str] = []
    if references:
        shown = TerminalProgress() if on_progress is None else None
        try:
            listed = resolve_references(client, entity, manifest.digest_algorithm, references, on_progress or shown)
        finally:
            if shown is not None:
                shown.done()
        if not entries:
            return listed
        included.append(listed.manifest_id)
    inline = _inline_contents(entries)
    _upload_missing(client, entity, [e for e in entries if not e.ref and e.path not in inline])
    header = mpb.ManifestHeader(entity=entity, digest_algorithm=manifest.digest_algorithm, include_manifests=included)
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
