"""http(s) references built in the SDK: ETag when the server gives one, else a content hash."""

from __future__ import annotations

import base64
import hashlib
import socket

import pytest
import xxhash
from support.http_files import FileServer, Served

import depot
from depot._http_refs import http_reference_entries, normalize_etag
from depot.native import hash_bytes


def _entries(uri: str, *, name: str | None = None, checksum: bool = True, alg: str = "xxh3_128"):
    return http_reference_entries(uri, name, checksum, 10_000_000, alg)


def test_etag_and_length_from_head(http_files: FileServer) -> None:
    http_files.files["/data/train.csv"] = Served(b"a,b\n1,2\n", etag='"abc123"')
    (e,) = _entries(http_files.url("data/train.csv"))
    assert (e.path, e.algorithm, e.digest, e.size) == ("train.csv", "etag", "abc123", 8)
    assert e.ref == http_files.url("data/train.csv")
    assert [m for m, _ in http_files.requests] == ["HEAD"], "an ETag makes the body unnecessary"


def test_weak_etag_is_normalized(http_files: FileServer) -> None:
    http_files.files["/w"] = Served(b"x", etag='W/"weak-1"')
    (e,) = _entries(http_files.url("w"), name="dir/w.txt")
    assert (e.path, e.digest) == ("dir/w.txt", "weak-1")
    assert normalize_etag(' "q" ') == "q"


@pytest.mark.parametrize("alg", ["xxh3_128", "md5"])
def test_without_etag_the_content_is_hashed(http_files: FileServer, alg: str) -> None:
    body = bytes(range(256)) * 9000  # several read chunks
    http_files.files["/blob.bin"] = Served(body)
    (e,) = _entries(http_files.url("blob.bin"), alg=alg)
    (raw,) = hash_bytes(body, (alg,))
    assert (e.algorithm, e.digest, e.size) == (alg, base64.b64encode(raw).decode(), len(body))
    reference = xxhash.xxh3_128(body).digest() if alg == "xxh3_128" else hashlib.md5(body).digest()
    assert raw == reference


def test_changed_content_without_etag_changes_the_digest(http_files: FileServer) -> None:
    http_files.files["/page"] = Served(b"version one")
    (first,) = _entries(http_files.url("page"))
    http_files.files["/page"] = Served(b"version two")
    (second,) = _entries(http_files.url("page"))
    assert first.digest != second.digest
    (again,) = _entries(http_files.url("page"))
    assert again.digest == second.digest


def test_server_refusing_head_falls_back_to_get(http_files: FileServer) -> None:
    http_files.head_allowed = False
    http_files.files["/e"] = Served(b"etagged", etag='"e1"')
    (e,) = _entries(http_files.url("e"))
    assert (e.algorithm, e.digest, e.size) == ("etag", "e1", 7)


def test_checksum_false_records_the_url_only(http_files: FileServer) -> None:
    (e,) = _entries(http_files.url("not/there.txt"), checksum=False)
    assert (e.path, e.digest, e.algorithm, e.size) == ("there.txt", e.ref, "none", 0)
    assert http_files.requests == [], "checksum=False must not touch the server"


def test_404_is_not_found_naming_the_url(http_files: FileServer) -> None:
    url = http_files.url("missing.bin")
    with pytest.raises(depot.NotFoundError, match="missing.bin"):
        _entries(url)


def test_connection_refused_is_comm_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/x"
    with pytest.raises(depot.CommError, match=f"127.0.0.1:{port}"):
        _entries(url)


@pytest.mark.parametrize(
    "uri",
    [
        "ftp://host/x",
        "https://user:pw@host/x",
        "https://token@host/x",
        "http:///nohost",
        "gopher://h/",
    ],
)
def test_rejected_urls(uri: str) -> None:
    with pytest.raises(depot.InvalidArgumentError) as info:
        _entries(uri)
    assert info.value.field == "uri"


def test_bad_arguments(http_files: FileServer) -> None:
    with pytest.raises(depot.InvalidArgumentError):
        http_reference_entries(http_files.url("x"), None, True, 0, "md5")
    with pytest.raises(depot.InvalidArgumentError):
        http_reference_entries(http_files.url("x"), None, True, 1, "sha1")
    assert http_files.requests == []
