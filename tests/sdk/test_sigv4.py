"""The SDK's own SigV4 for S3 GETs signs exactly as botocore's ``S3SigV4Auth`` does.

Two checks: the same request at the same instant gets botocore's
``Authorization`` byte for byte, and a GET as ``S3Fetcher`` sends it over
the wire (its real Host header, path and query) verifies when a server
re-signs what it received with botocore and the secret key. (moto's server,
used by the other S3 tests, does not check signatures unless IAM auth is
switched on, so the check here is the one that can fail.)
"""

from __future__ import annotations

import calendar
import hashlib
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

import depot
from depot import ManifestEntry
from depot._references import fetch_reference
from depot._s3_fetch import S3Fetcher
from depot._sigv4 import SigningCredentials, sign_get

ACCESS, SECRET = "AKIDSIGV4TEST", "sigv4-test-secret"
BODY = b"signed bytes\n"


def _botocore(url: str, token: str | None, region: str) -> dict[str, str]:
    req = AWSRequest(method="GET", url=url, headers={})
    S3SigV4Auth(Credentials(ACCESS, SECRET, token).get_frozen_credentials(), "s3", region).add_auth(req)
    return dict(req.headers.items())


@pytest.mark.parametrize("token", [None, "session/token+with=odd chars"])
@pytest.mark.parametrize(
    ("url", "host", "path", "query"),
    [
        ("http://127.0.0.1:9000/b/d/k%20v%26.bin", "127.0.0.1:9000", "/b/d/k%20v%26.bin", ""),
        (
            "http://bkt.s3.amazonaws.com/a/b~c?versionId=abc%2Bdef",
            "bkt.s3.amazonaws.com",
            "/a/b~c",
            "versionId=abc%2Bdef",
        ),
        ("http://h/x?b=2&a-b=1&a=3", "h", "/x", "b=2&a-b=1&a=3"),
    ],
)
def test_same_authorization_as_botocore(url: str, host: str, path: str, query: str, token: str | None) -> None:
    theirs = _botocore(url, token, "eu-west-1")
    at = calendar.timegm(time.strptime(theirs["X-Amz-Date"], "%Y%m%dT%H%M%SZ"))
    mine = sign_get(SigningCredentials(ACCESS, SECRET, token), "eu-west-1", host, path, query, now=at)
    assert mine == theirs


class _Verifier(BaseHTTPRequestHandler):
    """Serves BODY only to a request whose signature botocore reproduces from what arrived."""

    protocol_version = "HTTP/1.1"
    seen: list[str] = []

    def do_GET(self) -> None:
        host = self.headers["Host"]
        got = self.headers.get("Authorization", "")
        amz_date = self.headers.get("X-Amz-Date", "")
        req = AWSRequest(method="GET", url=f"http://{host}{self.path}", headers={})
        creds = Credentials(ACCESS, SECRET).get_frozen_credentials()
        signer = S3SigV4Auth(creds, "s3", "us-east-1")
        # Re-sign at the request's own instant: botocore reads the clock, so
        # compare the signature over the canonical request instead.
        req.context["timestamp"] = amz_date
        req.headers["X-Amz-Date"] = amz_date
        req.headers["X-Amz-Content-SHA256"] = self.headers.get("X-Amz-Content-SHA256", "")
        canonical = signer.canonical_request(req)
        string_to_sign = signer.string_to_sign(req, canonical)
        want = signer.signature(string_to_sign, req)
        ok = got.endswith(f"Signature={want}")
        self.seen.append(self.path)
        status, body = (200, BODY) if ok else (403, b"<Error><Code>SignatureDoesNotMatch</Code></Error>")
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", f'"{hashlib.md5(body).hexdigest()}"')
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def verifier() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Verifier)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_the_wire_request_verifies(verifier: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    s3 = S3Fetcher(verifier, region_name="us-east-1")
    key = "data set/k+v&~(1).bin"
    e = ManifestEntry("k", hashlib.md5(BODY).hexdigest(), "etag", len(BODY), ref=f"s3://bkt/{key}", version_id="v+1/2")
    assert fetch_reference(e, tmp_path / "out", s3=s3)
    assert (tmp_path / "out").read_bytes() == BODY
    assert _Verifier.seen[-1] == "/bkt/data%20set/k%2Bv%26~%281%29.bin?versionId=v%2B1%2F2"

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    wrong = S3Fetcher(verifier, region_name="us-east-1")
    with pytest.raises(depot.PermissionDeniedError, match="SignatureDoesNotMatch"):
        fetch_reference(e, tmp_path / "out", s3=wrong)
