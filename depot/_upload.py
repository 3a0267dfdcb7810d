"""Moving an artifact's bytes up, before a commit.

The blobs the server lacks (FindMissingBlobs), sent as BatchUpdateBlobs
calls for small files and UploadBlob streams for large ones, several in
flight at once; the smallest files of a version ride inline with the
manifest instead; then PutManifest (or a CreateManifest stream past one
batch). The answer is the manifest service's signed reference, which the
commit carries.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextvars
import os
from collections.abc import Callable, Iterator

from depot.common.v1 import common_pb2
from depot.manifest.v1 import manifest_pb2 as mpb
from depot.native import hash_bytes

from ._blobs import SMALL_BLOB, batches, update_blobs
from ._client import Client
from ._exceptions import DepotError, DigestMismatchError
from ._manifest import Manifest, ManifestEntry, b64
from ._progress import Progress
from ._resolve import OnProgress, resolve_references

# UploadBlob's chunk: 4 MiB is a quarter of the messages (and of their
# per-message work on both sides) of 1 MiB, within the server's 16 MiB cap.
_CHUNK = 4 << 20
_BATCH = 1000
# Calls in flight: a batch or stream waits on the network or the server
# most of its time, so a few threads keep both busy on a 2-core machine.
_WORKERS = 4
# Submitted but unfinished uploads: bounds memory to about this many
# batches (8 MiB each) however many files a version has.
_MAX_QUEUED = 2 * _WORKERS
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
        with Progress(label="listing references", enabled=None if on_progress is None else False) as bar:

            def show(objects: int, size: int) -> None:
                bar.advance(objects - bar.objects, size - bar.bytes)  # the server sends running totals

            listed = resolve_references(client, entity, manifest.digest_algorithm, references, on_progress or show)
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
    An entry without a local file comes from a logged version (an
    incremental artifact's base): its blob is stored already.
    """
    out: dict[str, bytes] = {}
    total = 0
    for e in entries:
        if e.ref or e.local_path is None or e.size > _INLINE_FILE or total + e.size > _INLINE_TOTAL:
            continue
        out[e.path] = _read_checked(e)
        total += e.size
    return out


def _upload_missing(client: Client, entity: str, entries: list[ManifestEntry]) -> None:
    """Uploads the blobs the server lacks: small ones in batches, large ones streamed."""
    unique: dict[tuple[str, str], ManifestEntry] = {}
    for e in entries:
        unique.setdefault((e.algorithm, e.digest), e)
    small: list[ManifestEntry] = []
    with _BoundedPool(_WORKERS, _MAX_QUEUED) as pool:
        for missing in _find_missing(client, entity, list(unique.values())):
            for e in missing:
                if e.size > SMALL_BLOB:
                    pool.submit(_upload_one, client, entity, e)
                else:
                    small.append(e)
            # Full batches go as soon as they are known; the rest waits for more.
            *full, rest = list(batches(small, _size)) or [[]]
            for batch in full:
                pool.submit(_upload_batch, client, entity, batch)
            small = rest
        if small:
            pool.submit(_upload_batch, client, entity, small)


def _size(e: ManifestEntry) -> int:
    return e.size


def _find_missing(client: Client, entity: str, todo: list[ManifestEntry]) -> Iterator[list[ManifestEntry]]:
    """The entries whose blobs the server lacks, one FindMissingBlobs batch at a time."""
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
        yield [e for e in chunk if (e.algorithm, e.digest) in wanted]


class _BoundedPool:
    """A thread pool that blocks the submitter while ``max_queued`` tasks are
    unfinished, and raises the first task error (cancelling what has not started)."""

    def __init__(self, workers: int, max_queued: int):
        self._pool = concurrent.futures.ThreadPoolExecutor(workers)
        self._max = max_queued
        self._queued: collections.deque[concurrent.futures.Future[None]] = collections.deque()

    def submit(self, fn: Callable[..., None], *args: object) -> None:
        while len(self._queued) >= self._max:
            self._queued.popleft().result()
        # The submitter's context (its trace span) goes with the task.
        self._queued.append(self._pool.submit(contextvars.copy_context().run, fn, *args))

    def __enter__(self) -> _BoundedPool:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            if exc is None:
                while self._queued:
                    self._queued.popleft().result()
        finally:
            # On an error nothing queued is worth starting: fail fast.
            self._pool.shutdown(wait=True, cancel_futures=True)


def _read_checked(e: ManifestEntry) -> bytes:
    """The file's bytes, refused when it changed since it was added (size or digest)."""
    assert e.local_path is not None
    with open(e.local_path, "rb") as f:
        data = f.read(e.size + 1)
    _check_unchanged(e, data)
    return data


def _check_unchanged(e: ManifestEntry, data: bytes) -> None:
    # Hashing a small file costs microseconds; a same-size edit is caught
    # here, with the file named, instead of by the server's check of the batch.
    if len(data) != e.size:
        raise DigestMismatchError(f"{e.local_path} changed size after it was added to the artifact", field=e.path)
    if b64(hash_bytes(data, (e.algorithm,))[0]) != e.digest:
        raise DigestMismatchError(
            f"{e.local_path} changed after it was added to the artifact: its digest is no longer {e.digest}",
            field=e.path,
        )


def _upload_batch(client: Client, entity: str, entries: list[ManifestEntry]) -> None:
    # Files are read here, in the worker, so only the batches in flight are in memory.
    update_blobs(client, entity, [(e.algorithm, e.digest, _read_checked(e)) for e in entries])


def _upload_one(client: Client, entity: str, e: ManifestEntry) -> None:
    local_path = e.local_path
    assert local_path is not None

    def requests() -> Iterator[mpb.UploadBlobRequest | bytes]:
        yield mpb.UploadBlobRequest(
            header=mpb.UploadBlobHeader(
                entity=entity,
                digest=mpb.BlobDigest(algorithm=e.algorithm, digest=e.digest),
                size=e.size,
            )
        )
        with open(local_path, "rb") as f:
            while chunk := f.read(_CHUNK):
                yield chunk  # framed by client.upload_blob

    try:
        client.upload(client.upload_blob, requests)
    except DepotError as err:
        # The server refused the bytes (a size or digest mismatch): name the
        # file that changed rather than the blob.
        if isinstance(err, DigestMismatchError) or _size_changed(local_path, e.size):
            raise DigestMismatchError(
                f"{local_path} changed after it was added to the artifact: its digest is no longer {e.digest}",
                field=e.path,
            ) from None
        raise


def _size_changed(path: str, size: int) -> bool:
    try:
        return os.stat(path).st_size != size
    except OSError:
        return True
