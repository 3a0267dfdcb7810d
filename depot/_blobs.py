"""Small blobs in batches: BatchUpdateBlobs up, BatchReadBlobs down.

One call carries up to ``MAX_BATCH_BLOBS`` blobs and ``MAX_BATCH_BYTES`` of
data (the server's limits, see manifest.proto), so ten thousand 4 KiB files
are a dozen round trips instead of ten thousand streams. Blobs larger than
``SMALL_BLOB`` stream one by one (UploadBlob / ReadBlob): a batch holding one
of them would gain nothing and hold megabytes in memory.

These helpers make one call each; :func:`batches` groups work within the
limits. They move bytes only: callers check digests (the uploader before
sending, the downloader on what it wrote).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TypeVar

from depot.manifest.v1 import manifest_pb2 as mpb

from ._client import Client

T = TypeVar("T")

MAX_BATCH_BLOBS = 1000
MAX_BATCH_BYTES = 8 * 1024 * 1024
# Files up to this size travel in batches; larger ones stream alone.
SMALL_BLOB = 1024 * 1024


def batches(
    items: Iterable[T],
    size: Callable[[T], int],
    max_blobs: int = MAX_BATCH_BLOBS,
    max_bytes: int = MAX_BATCH_BYTES,
) -> Iterator[list[T]]:
    """``items`` in order, grouped into lists within one call's limits.

    An item larger than ``max_bytes`` would never fit: it is refused with
    ValueError (stream it instead).
    """
    batch: list[T] = []
    total = 0
    for item in items:
        n = size(item)
        if n > max_bytes:
            raise ValueError(f"a blob of {n} bytes exceeds one batch's {max_bytes}; stream it")
        if batch and (len(batch) >= max_blobs or total + n > max_bytes):
            yield batch
            batch, total = [], 0
        batch.append(item)
        total += n
    if batch:
        yield batch


def update_blobs(client: Client, entity: str, blobs: Sequence[tuple[str, str, bytes]]) -> list[bool]:
    """Stores ``(algorithm, digest, data)`` blobs in one BatchUpdateBlobs call.

    All or nothing: the server checks every digest first. Returns, per blob,
    whether it was newly stored (False: it was there already).
    """
    req = mpb.BatchUpdateBlobsRequest(
        entity=entity,
        blobs=[mpb.BlobData(digest=mpb.BlobDigest(algorithm=a, digest=d), data=data) for a, d, data in blobs],
    )
    resp = client.call(client.manifest.BatchUpdateBlobs, req)
    return [b.created for b in resp.blobs]


def read_blobs(client: Client, entity: str, manifest_id: str, digests: Sequence[tuple[str, str]]) -> list[bytes]:
    """The bytes of ``(algorithm, digest)`` blobs, in order, in one BatchReadBlobs call.

    At most ``MAX_BATCH_BLOBS`` blobs whose sizes add up to at most
    ``MAX_BATCH_BYTES`` (else InvalidArgumentError). ``manifest_id`` lets a
    registry reader read the linked version's blobs. A missing blob raises
    NotFoundError naming it. The bytes are not verified here.
    """
    req = mpb.BatchReadBlobsRequest(
        entity=entity,
        digests=[mpb.BlobDigest(algorithm=a, digest=d) for a, d in digests],
        manifest_id=manifest_id,
    )
    resp = client.call(client.manifest.BatchReadBlobs, req)
    return [b.data for b in resp.blobs]
