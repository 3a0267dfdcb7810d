"""The blob set behind a registry reader's ReadBlob/BatchReadBlobs check:
compact records of a real manifest, and a cache bounded by bytes."""

from __future__ import annotations

import base64
import hashlib
import io

import xxhash

from depot.native import ManifestWriter
from depot.services.manifest.blobs import BlobId
from depot.services.manifest.reading import BlobSet, _BlobSets


def _md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def _xxh(data: bytes) -> str:
    return base64.b64encode(xxhash.xxh3_128(data).digest()).decode()


def _manifest(n: int) -> io.BytesIO:
    out = io.BytesIO()
    w = ManifestWriter(out, "md5", block_entries=64)
    for i in range(n):
        if i % 3 == 0:
            w.add(f"f{i:05d}", "md5", _md5(b"%d" % i), 1)
        elif i % 3 == 1:
            w.add(f"f{i:05d}", "xxh3_128", _xxh(b"%d" % i), 1)
        else:
            # A reference's digest is no blob of the entity, whatever it looks like.
            w.add(f"f{i:05d}", "etag", _md5(b"%d" % i), 1, ref=f"s3://b/{i}")
    w.close()
    out.seek(0)
    return out


def test_a_blob_set_holds_the_uploaded_files_only() -> None:
    blobs = BlobSet.read(_manifest(500))
    assert blobs.nbytes == 17 * len(range(0, 500, 3)) + 17 * len(range(1, 500, 3))
    for i in range(500):
        md5, xxh = BlobId("md5", _md5(b"%d" % i)), BlobId("xxh3_128", _xxh(b"%d" % i))
        assert (md5 in blobs) == (i % 3 == 0)
        assert (xxh in blobs) == (i % 3 == 1)
    # The same digest under the other algorithm is another blob.
    assert BlobId("xxh3_128", _md5(b"0")) not in blobs
    assert BlobId("md5", "not base64") not in blobs


async def test_the_cache_is_bounded_by_bytes() -> None:
    sets = _BlobSets(max_bytes=17 * 10)
    builds: list[str] = []

    def builder(name: str, n: int):  # type: ignore[no-untyped-def]
        async def build() -> BlobSet:
            builds.append(name)
            return BlobSet(b"\x00" * 17 * n)

        return build

    await sets.get(("e", "a"), builder("a", 6))
    await sets.get(("e", "a"), builder("a", 6))
    assert builds == ["a"]
    await sets.get(("e", "b"), builder("b", 4))
    await sets.get(("e", "c"), builder("c", 4))  # 14 records > 10: "a" goes
    await sets.get(("e", "b"), builder("b", 4))
    await sets.get(("e", "a"), builder("a", 6))
    assert builds == ["a", "b", "c", "a"]
    await sets.get(("e", "huge"), builder("huge", 11))  # larger than the cache: not kept
    await sets.get(("e", "huge"), builder("huge", 11))
    assert builds[-2:] == ["huge", "huge"]
