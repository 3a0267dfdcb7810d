"""gs:// references to gzip-encoded objects (``Content-Encoding: gzip``, ``gsutil cp -Z``): listed, fetched, verified.

GCS's ``md5Hash`` and ``size`` cover the stored (compressed) bytes, and GCS
decompresses on the way out unless asked for ``Accept-Encoding: gzip``.
fake-gcs-server does both faithfully (checked: without the header it sends
the decoded bytes and ``X-Goog-Stored-Content-Encoding: gzip``; with it, the
stored bytes and ``Content-Encoding: gzip``), so these tests run against it.
The one exception is ``test_a_transcoded_answer_is_a_clear_digest_error``:
GCS ignoring the header cannot be made to happen there (the SDK always sends
it), so a loopback ``http.server`` stands in for GCS in that test only.
"""

from __future__ import annotations

import gzip
import http.server
import json
import os
import random
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.entities import create_team
from support.gcs import b64md5, new_bucket, put
from support.servers import ServerThread, make_config

import depot
from depot._gcs_fetch import GCSFetcher
from depot._manifest import ManifestEntry
from depot._references import CacheKey, ReferenceCache, fetch_reference


def put_encoded(endpoint: str, bucket: str, key: str, stored: bytes, encoding: str = "gzip") -> dict[str, Any]:
    """Uploads ``stored`` as is, with ``contentEncoding`` set (what ``gsutil cp -Z`` does after compressing)."""
    boundary = f"b{random.getrandbits(64):x}"
    meta = json.dumps({"name": key, "contentEncoding": encoding, "contentType": "text/plain"}).encode()
    body = (
        f"--{boundary}\r\nContent-Type: application/json\r\n\r\n".encode()
        + meta
        + f"\r\n--{boundary}\r\nContent-Type: text/plain\r\n\r\n".encode()
        + stored
        + f"\r\n--{boundary}--\r\n".encode()
    )
    req = urllib.request.Request(
        f"{endpoint}/upload/storage/v1/b/{bucket}/o?uploadType=multipart",
        data=body,
        method="POST",
        headers={"Content-Type": f"multipart/related; boundary={boundary}"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        out: dict[str, Any] = json.loads(resp.read())
    assert out["contentEncoding"] == encoding and int(out["size"]) == len(stored)
    return out


def _text(n: int) -> bytes:
    # Compressible but not trivially: decodes to several CHUNK-sized pieces.
    rnd = random.Random(n)
    words = [bytes(rnd.choices(b"abcdefghij", k=rnd.randint(2, 9))) for _ in range(500)]
    return b" ".join(rnd.choices(words, k=n // 6))[:n]


@pytest.fixture
def gcs_bucket(gcs_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_endpoint)
    monkeypatch.setenv("DEPOT_CACHE_DIR", str(tmp_path / "ref-cache"))
    return new_bucket(gcs_endpoint)


@pytest.fixture
def gcs_server(tmp_path: Path, database_url: str, gcs_bucket: str) -> Iterator[ServerThread]:
    cfg = make_config(
        tmp_path / "depot-data",
        database_url,
        (tmp_path / "blobs").as_uri(),
        DEPOT_REFERENCE_BUCKETS=f"gs://{gcs_bucket}",
    )
    srv = ServerThread(cfg).start()
    create_team(srv.address, srv.admin_key, "team")
    yield srv
    srv.stop()


def _log(srv: ServerThread, ref: str, name: str) -> Any:
    with depot.init(entity="team", project="p", address=srv.address, api_key=srv.admin_key) as run:
        art = depot.Artifact(name, type="dataset")
        art.add_reference(ref)
        return run.log_artifact(art).wait()


def test_gzip_encoded_object_downloads_decompressed_and_verifies(
    gcs_server: ServerThread, gcs_endpoint: str, gcs_bucket: str, tmp_path: Path
) -> None:
    text = _text(3 << 20) + b"\0" * (2 << 20)  # 5 MiB decoded from a few hundred KB stored
    stored = gzip.compress(text)
    plain = os.urandom(1000)
    put_encoded(gcs_endpoint, gcs_bucket, "data/words.txt", stored)
    put(gcs_endpoint, gcs_bucket, "data/plain.bin", plain)
    # gzip-encoded but empty: nothing to decode.
    put_encoded(gcs_endpoint, gcs_bucket, "data/empty", b"")
    logged = _log(gcs_server, f"gs://{gcs_bucket}/data", "gz")

    files = {e.path: e for e in logged.files()}
    # The entry records the stored object, as GCS (and W&B) describe it.
    assert (files["words.txt"].size, files["words.txt"].digest) == (len(stored), b64md5(stored))
    assert (files["plain.bin"].size, files["plain.bin"].digest) == (len(plain), b64md5(plain))

    out = logged.download(tmp_path / "first")
    assert (out / "words.txt").read_bytes() == text
    assert (out / "plain.bin").read_bytes() == plain
    assert (out / "empty").read_bytes() == b""
    # Again, into a fresh root: the decoded file is never cached under the
    # stored bytes' digest (a hit could not be verified), so it is fetched again.
    again = logged.download(tmp_path / "second")
    assert (again / "words.txt").read_bytes() == text
    assert (again / "plain.bin").read_bytes() == plain


@pytest.mark.parametrize(
    "stored",
    [
        pytest.param(b"this was never gzip", id="not-gzip"),
        pytest.param(gzip.compress(b"x" * 5000)[:-5], id="truncated"),
        pytest.param(gzip.compress(b"y" * 5000)[:-8] + b"\0\0\0\0" + gzip.compress(b"y" * 5000)[-4:], id="bad-crc"),
    ],
)
def test_corrupt_gzip_stream_fails_and_leaves_no_file(
    gcs_server: ServerThread, gcs_endpoint: str, gcs_bucket: str, tmp_path: Path, stored: bytes
) -> None:
    # GCS stores what it is given: md5Hash matches these bytes, so only decoding can catch them.
    put_encoded(gcs_endpoint, gcs_bucket, "bad/x.txt", stored)
    logged = _log(gcs_server, f"gs://{gcs_bucket}/bad/x.txt", "bad")
    root = tmp_path / "out"
    with pytest.raises(depot.DigestMismatchError, match="not a valid gzip stream"):
        logged.download(root)
    assert not root.exists() or [p.name for p in root.rglob("*") if p.is_file()] == []


def test_fetch_verifies_the_stored_bytes(gcs_endpoint: str, tmp_path: Path) -> None:
    bucket = new_bucket(gcs_endpoint)
    text = _text(200_000)
    stored = gzip.compress(text)
    gen = put_encoded(gcs_endpoint, bucket, "w.txt", stored)["generation"]
    fetcher = GCSFetcher(gcs_endpoint)
    cache = ReferenceCache(tmp_path / "cache")

    def entry(digest: str, size: int) -> ManifestEntry:
        return ManifestEntry("w.txt", digest, "md5", size, ref=f"gs://{bucket}/w.txt", version_id=gen)

    assert fetch_reference(entry(b64md5(stored), len(stored)), tmp_path / "a", gcs=fetcher, cache=cache)
    assert (tmp_path / "a").read_bytes() == text
    # Not cached: the file holds the decoded bytes, which the recorded md5 does not cover.
    assert not cache.get(CacheKey(f"gs://{bucket}/w.txt", gen, b64md5(stored)), tmp_path / "hit")

    # The digest of the decoded text is not what GCS recorded: refused.
    with pytest.raises(depot.DigestMismatchError, match="does not match its recorded md5"):
        fetch_reference(entry(b64md5(text[: len(stored)]), len(stored)), tmp_path / "b", gcs=fetcher)
    # A recorded size other than the stored size: refused (the decoded size is never compared).
    with pytest.raises(depot.DigestMismatchError):
        fetch_reference(entry(b64md5(stored), len(text)), tmp_path / "c", gcs=fetcher)


def test_other_encodings_are_written_as_stored(gcs_endpoint: str, tmp_path: Path) -> None:
    bucket = new_bucket(gcs_endpoint)
    stored = b"opaque bytes GCS never transcodes"
    gen = put_encoded(gcs_endpoint, bucket, "b.br", stored, encoding="br")["generation"]
    e = ManifestEntry("b.br", b64md5(stored), "md5", len(stored), ref=f"gs://{bucket}/b.br", version_id=gen)
    assert fetch_reference(e, tmp_path / "a", gcs=GCSFetcher(gcs_endpoint))
    assert (tmp_path / "a").read_bytes() == stored


class _Transcoding(http.server.BaseHTTPRequestHandler):
    """GCS answering as if ``Accept-Encoding: gzip`` had not reached it: the decoded bytes."""

    seen: list[str] = []

    def do_GET(self) -> None:
        self.seen.append(self.headers.get("Accept-Encoding", ""))
        body = b"decoded text"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Goog-Stored-Content-Encoding", "gzip")
        self.send_header("X-Goog-Generation", "7")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_a_transcoded_answer_is_a_clear_digest_error(tmp_path: Path) -> None:
    """Stand-in for GCS (see the module docstring): the emulator always honours Accept-Encoding."""
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Transcoding)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        stored = gzip.compress(b"decoded text")
        e = ManifestEntry("t", b64md5(stored), "md5", len(stored), ref="gs://b/t", version_id="7")
        fetcher = GCSFetcher(f"http://127.0.0.1:{srv.server_address[1]}", max_attempts=1)
        with pytest.raises(depot.DigestMismatchError, match="GCS sent it decompressed"):
            fetch_reference(e, tmp_path / "t", gcs=fetcher)
        assert _Transcoding.seen == ["gzip"]
    finally:
        srv.shutdown()
        srv.server_close()
