"""Moving an artifact's bytes down, after a commit.

Every entry goes into a temp file beside its destination, is checked against
its digest, then renamed into place.
"""

from __future__ import annotations

import concurrent.futures
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from depot.manifest.v1 import manifest_pb2 as mpb
from depot.native import hash_file

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
