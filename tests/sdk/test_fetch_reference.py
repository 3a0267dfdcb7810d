"""Downloading references: exactly the recorded object, verified, or a clear error."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path
from typing import Any

import boto3
import pytest
from support.http_files import FileServer, Served

import depot
from depot import ManifestEntry
from depot._copying import new_temp_in
from depot._references import (
    CacheKey,
    ReferenceCache,
    S3Fetcher,
    fetch_reference,
    local_copy_matches,
)
from depot.native import hash_bytes


def _b64(alg: str, data: bytes) -> str:
    (raw,) = hash_bytes(data, (alg,))
    return base64.b64encode(raw).decode()


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    p = tmp_path / "out" / ".depot-tmp"
    p.parent.mkdir()
    p.touch()
    return p


# -- file:// ------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["xxh3_128", "md5"])
def test_file_copy_is_verified(tmp_path: Path, dest: Path, alg: str) -> None:
    src = tmp_path / "some dir" / "a b.bin"
    src.parent.mkdir()
    src.write_bytes(b"payload" * 1000)
    e = ManifestEntry("a.bin", _b64(alg, src.read_bytes()), alg, 7000, ref=src.as_uri())
    assert fetch_reference(e, dest)
    assert dest.read_bytes() == src.read_bytes()

    src.write_bytes(b"PAYLOAD" * 1000)  # same size, other bytes
    with pytest.raises(depot.DigestMismatchError):
        fetch_reference(e, dest)
    src.write_bytes(b"short")
    with pytest.raises(depot.DigestMismatchError, match="5 bytes"):
        fetch_reference(e, dest)


def test_file_missing(tmp_path: Path, dest: Path) -> None:
    e = ManifestEntry("gone", _b64("md5", b""), "md5", 0, ref=(tmp_path / "gone").as_uri())
    assert fetch_reference(e, dest, allow_missing=True) is False
    with pytest.raises(depot.NotFoundError, match="gone"):
        fetch_reference(e, dest)


def test_file_checksum_false_is_copied_unverified(tmp_path: Path, dest: Path) -> None:
    src = tmp_path / "x.txt"
    src.write_bytes(b"anything")
    e = ManifestEntry("x.txt", src.as_uri(), "none", 0, ref=src.as_uri())
    assert fetch_reference(e, dest)
    assert dest.read_bytes() == b"anything"


def test_not_a_reference_or_unknown_scheme(dest: Path) -> None:
    with pytest.raises(depot.InvalidArgumentError):
        fetch_reference(ManifestEntry("a", "d", "md5", 0), dest)
    # gs:// is downloadable since issue 13 (test_gcs_references.py); ftp:// never is.
    with pytest.raises(depot.InvalidArgumentError, match="ftp://"):
        fetch_reference(ManifestEntry("a", "d", "etag", 0, ref="ftp://b/k"), dest)


# -- s3:// ----------------------------------------------------------------------------


@pytest.fixture
def boto(s3_endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=s3_endpoint)


@pytest.fixture
def s3(s3_endpoint: str) -> S3Fetcher:
    return S3Fetcher(s3_endpoint)


def _s3_entry(boto: Any, bucket: str, key: str, *, pin_version: bool = True) -> ManifestEntry:
    head = boto.head_object(Bucket=bucket, Key=key)
    vid = head.get("VersionId") or ""
    return ManifestEntry(
        key.rsplit("/", 1)[-1],
        head["ETag"].strip('"'),
        "etag",
        head["ContentLength"],
        ref=f"s3://{bucket}/{key}",
        version_id=vid if pin_version and vid != "null" else "",
    )


def test_s3_plain_bucket(boto: Any, s3: S3Fetcher, s3_bucket: str, dest: Path) -> None:
    boto.put_object(Bucket=s3_bucket, Key="d/k v&.bin", Body=b"hello s3")
    e = _s3_entry(boto, s3_bucket, "d/k v&.bin")
    assert e.digest == hashlib.md5(b"hello s3").hexdigest()
    assert fetch_reference(e, dest, s3=s3)
    assert dest.read_bytes() == b"hello s3"


def test_s3_tampered_object_is_rejected(boto: Any, s3: S3Fetcher, s3_bucket: str, dest: Path) -> None:
    boto.put_object(Bucket=s3_bucket, Key="k", Body=b"original")
    e = _s3_entry(boto, s3_bucket, "k")
    boto.put_object(Bucket=s3_bucket, Key="k", Body=b"tampered")  # same size
    with pytest.raises(depot.DigestMismatchError, match="ETag"):
        fetch_reference(e, dest, s3=s3)
    boto.put_object(Bucket=s3_bucket, Key="k", Body=b"longer than before")
    with pytest.raises(depot.DigestMismatchError, match="bytes"):
        fetch_reference(e, dest, s3=s3)


def test_s3_multipart_etag_compared_with_the_returned_one(boto: Any, s3: S3Fetcher, s3_bucket: str, dest: Path) -> None:
    up = boto.create_multipart_upload(Bucket=s3_bucket, Key="mp")
    part = boto.upload_part(Bucket=s3_bucket, Key="mp", UploadId=up["UploadId"], PartNumber=1, Body=b"multipart body")
    boto.complete_multipart_upload(
        Bucket=s3_bucket,
        Key="mp",
        UploadId=up["UploadId"],
        MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]},
    )
    e = _s3_entry(boto, s3_bucket, "mp")
    assert "-" in e.digest
    assert fetch_reference(e, dest, s3=s3)
    assert dest.read_bytes() == b"multipart body"
    boto.put_object(Bucket=s3_bucket, Key="mp", Body=b"multipart BODY")
    with pytest.raises(depot.DigestMismatchError):
        fetch_reference(e, dest, s3=s3)


def test_s3_versioned_fetches_the_recorded_version(boto: Any, s3: S3Fetcher, s3_bucket: str, dest: Path) -> None:
    boto.put_bucket_versioning(Bucket=s3_bucket, VersioningConfiguration={"Status": "Enabled"})
    boto.put_object(Bucket=s3_bucket, Key="model.pt", Body=b"weights v1")
    e = _s3_entry(boto, s3_bucket, "model.pt")
    assert e.version_id
    boto.put_object(Bucket=s3_bucket, Key="model.pt", Body=b"weights v2!")
    assert fetch_reference(e, dest, s3=s3)
    assert dest.read_bytes() == b"weights v1"

    boto.delete_object(Bucket=s3_bucket, Key="model.pt")  # a delete marker on top
    assert fetch_reference(e, dest, s3=s3)
    assert dest.read_bytes() == b"weights v1"

    # Without the version id the latest (deleted) object is what was asked for.
    unpinned = ManifestEntry(e.path, e.digest, e.algorithm, e.size, ref=e.ref)
    assert fetch_reference(unpinned, dest, s3=s3, allow_missing=True) is False

    boto.delete_object(Bucket=s3_bucket, Key="model.pt", VersionId=e.version_id)
    with pytest.raises(depot.NotFoundError, match=e.version_id):
        fetch_reference(e, dest, s3=s3)


def test_s3_version_in_the_ref_uri(boto: Any, s3: S3Fetcher, s3_bucket: str, dest: Path) -> None:
    boto.put_bucket_versioning(Bucket=s3_bucket, VersioningConfiguration={"Status": "Enabled"})
    vid = boto.put_object(Bucket=s3_bucket, Key="a", Body=b"one")["VersionId"]
    boto.put_object(Bucket=s3_bucket, Key="a", Body=b"two")
    e = ManifestEntry("a", hashlib.md5(b"one").hexdigest(), "etag", 3, ref=f"s3://{s3_bucket}/a?versionId={vid}")
    assert fetch_reference(e, dest, s3=s3)
    assert dest.read_bytes() == b"one"


def test_s3_missing(s3: S3Fetcher, s3_bucket: str, dest: Path) -> None:
    e = ManifestEntry("nope", "0" * 32, "etag", 1, ref=f"s3://{s3_bucket}/nope")
    assert fetch_reference(e, dest, s3=s3, allow_missing=True) is False
    with pytest.raises(depot.NotFoundError, match=f"s3://{s3_bucket}/nope"):
        fetch_reference(e, dest, s3=s3)
    other = ManifestEntry("nope", "0" * 32, "etag", 1, ref="s3://no-such-bucket-depot/k")
    assert fetch_reference(other, dest, s3=s3, allow_missing=True) is False


def test_s3_checksum_false_downloads_unverified(boto: Any, s3: S3Fetcher, s3_bucket: str, dest: Path) -> None:
    boto.put_object(Bucket=s3_bucket, Key="free", Body=b"whatever")
    uri = f"s3://{s3_bucket}/free"
    assert fetch_reference(ManifestEntry("free", uri, "none", 0, ref=uri), dest, s3=s3)
    assert dest.read_bytes() == b"whatever"


def test_s3_fetcher_endpoint_from_env(monkeypatch: pytest.MonkeyPatch, s3_endpoint: str) -> None:
    monkeypatch.delenv("DEPOT_REFERENCE_S3_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("DEPOT_S3_ENDPOINT_URL", s3_endpoint)
    assert S3Fetcher().endpoint_url == s3_endpoint
    with pytest.raises(depot.InvalidArgumentError):
        S3Fetcher(addressing_style="sideways")


def test_s3_cache_serves_second_fetch(boto: Any, s3: S3Fetcher, s3_bucket: str, dest: Path, tmp_path: Path) -> None:
    cache = ReferenceCache(tmp_path / "cache", 1 << 20)
    boto.put_object(Bucket=s3_bucket, Key="c", Body=b"cache me")
    e = _s3_entry(boto, s3_bucket, "c")
    assert fetch_reference(e, dest, s3=s3, cache=cache)
    key = CacheKey(e.ref, e.version_id, e.digest)
    other = tmp_path / "other"
    assert cache.get(key, other) and other.read_bytes() == b"cache me"
    boto.delete_object(Bucket=s3_bucket, Key="c")
    # Unlinked, not truncated: the cache adopted the verified download by a
    # hard link, so writing through it would poison the cached copy.
    dest.unlink()
    assert fetch_reference(e, dest, s3=s3, cache=cache), "served from the cache"
    assert dest.read_bytes() == b"cache me"


# -- http(s):// -------------------------------------------------------------------------


def test_http_etag_entry(http_files: FileServer, dest: Path) -> None:
    http_files.files["/f"] = Served(b"content", etag='"v1"')
    e = ManifestEntry("f", "v1", "etag", 7, ref=http_files.url("f"))
    assert fetch_reference(e, dest)
    assert dest.read_bytes() == b"content"
    http_files.files["/f"] = Served(b"CONTENT", etag='"v2"')
    with pytest.raises(depot.DigestMismatchError, match="v2"):
        fetch_reference(e, dest)


def test_http_content_digest_entry(http_files: FileServer, dest: Path) -> None:
    http_files.files["/g"] = Served(b"no etag here")
    e = ManifestEntry("g", _b64("xxh3_128", b"no etag here"), "xxh3_128", 12, ref=http_files.url("g"))
    assert fetch_reference(e, dest)
    assert dest.read_bytes() == b"no etag here"
    http_files.files["/g"] = Served(b"no ETAG here")
    with pytest.raises(depot.DigestMismatchError):
        fetch_reference(e, dest)


def test_http_missing(http_files: FileServer, dest: Path) -> None:
    e = ManifestEntry("h", "x", "etag", 1, ref=http_files.url("h"))
    assert fetch_reference(e, dest, allow_missing=True) is False
    with pytest.raises(depot.NotFoundError, match="/h"):
        fetch_reference(e, dest)


def test_http_cache_hit_skips_the_server(http_files: FileServer, dest: Path, tmp_path: Path) -> None:
    cache = ReferenceCache(tmp_path / "cache", 1 << 20)
    http_files.files["/c"] = Served(b"cached", etag='"c1"')
    e = ManifestEntry("c", "c1", "etag", 6, ref=http_files.url("c"))
    assert fetch_reference(e, dest, cache=cache)
    del http_files.files["/c"]
    n = len(http_files.requests)
    assert fetch_reference(e, dest, cache=cache)
    assert dest.read_bytes() == b"cached"
    assert len(http_files.requests) == n


def test_local_copy_matches(tmp_path: Path) -> None:
    p = tmp_path / "f"
    p.write_bytes(b"abc")
    md5hex = hashlib.md5(b"abc").hexdigest()
    assert local_copy_matches(ManifestEntry("f", _b64("xxh3_128", b"abc"), "xxh3_128", 3, ref="x"), p)
    assert local_copy_matches(ManifestEntry("f", _b64("md5", b"abc"), "md5", 3, ref="x"), p)
    assert local_copy_matches(ManifestEntry("f", md5hex, "etag", 3, ref="s3://b/f"), p)
    assert not local_copy_matches(ManifestEntry("f", md5hex, "etag", 4, ref="s3://b/f"), p)
    assert not local_copy_matches(ManifestEntry("f", md5hex + "-2", "etag", 3, ref="s3://b/f"), p)
    assert not local_copy_matches(ManifestEntry("f", "s3://b/f", "none", 0, ref="s3://b/f"), p)
    assert not local_copy_matches(ManifestEntry("f", md5hex, "etag", 3, ref="s3://b/f"), tmp_path / "no")
    p.write_bytes(b"abd")
    assert not local_copy_matches(ManifestEntry("f", md5hex, "etag", 3, ref="s3://b/f"), p)


def test_s3_fetch_never_writes_through_a_shared_dest(
    boto: Any, s3: S3Fetcher, s3_bucket: str, dest: Path, tmp_path: Path
) -> None:
    boto.put_object(Bucket=s3_bucket, Key="w", Body=b"fetched bytes")
    e = _s3_entry(boto, s3_bucket, "w")
    # A dest hard-linked elsewhere (as a cache adoption leaves it): replaced by a new file.
    dest.write_bytes(b"")
    shared = tmp_path / "shared"
    os.link(dest, shared)
    assert fetch_reference(e, dest, s3=s3)
    assert dest.read_bytes() == b"fetched bytes" and shared.read_bytes() == b""
    assert dest.stat().st_ino != shared.stat().st_ino
    # A symlink is not followed.
    dest.unlink()
    dest.symlink_to(shared)
    assert fetch_reference(e, dest, s3=s3)
    assert dest.read_bytes() == b"fetched bytes" and not dest.is_symlink() and shared.read_bytes() == b""
    # A non-empty file is replaced, not written over: a reader holding it still sees its bytes.
    dest.write_bytes(b"old")
    with open(dest, "rb") as held:
        assert fetch_reference(e, dest, s3=s3)
        assert held.read() == b"old" and dest.read_bytes() == b"fetched bytes"
    # A fresh, empty temp linked only there (what a download makes) is written in place.
    dest.unlink()
    dir_fd = os.open(dest.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        name, out = new_temp_in(dir_fd)
        os.close(out)
    finally:
        os.close(dir_fd)
    tmp = dest.parent / name
    with open(tmp, "rb") as held:
        assert fetch_reference(e, tmp, s3=s3)
        assert held.read() == b"fetched bytes"
