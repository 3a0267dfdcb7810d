"""The lean HTTP/1.1 GET under S3 downloads: framings, a short body, keep-alive, and proxies.

A raw socket server answers exactly the bytes each test scripts, so the
framings S3-compatible servers may use (chunked, HTTP/1.0 to the end of the
stream) are exercised, not just the simulator's Content-Length.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import socketserver
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import depot
from depot import ManifestEntry
from depot._references import fetch_reference
from depot._s3_fetch import S3Fetcher

BODY = b"0123456789" * 1000


class _Script(socketserver.StreamRequestHandler):
    answer: Callable[[bytes], bytes]
    requests: list[bytes]
    connections: list[int]

    def handle(self) -> None:
        self.connections.append(1)
        while True:
            head = b""
            while not head.endswith(b"\r\n\r\n"):
                line = self.rfile.readline()
                if not line:
                    return
                head += line
            self.requests.append(head)
            out = self.answer(head)
            self.wfile.write(out)
            self.wfile.flush()
            if b"Connection: close" in out or out.startswith(b"HTTP/1.0"):
                return


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


@pytest.fixture
def scripted() -> Iterator[Callable[[Callable[[bytes], bytes]], tuple[str, type[_Script]]]]:
    servers: list[_Server] = []

    def start(answer: Callable[[bytes], bytes]) -> tuple[str, type[_Script]]:
        handler = type("H", (_Script,), {"answer": staticmethod(answer), "requests": [], "connections": []})
        srv = _Server(("127.0.0.1", 0), handler)
        threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(srv)
        return f"http://127.0.0.1:{srv.server_address[1]}", handler

    yield start
    for srv in servers:
        srv.shutdown()
        srv.server_close()


def _entry(body: bytes = BODY) -> ManifestEntry:
    return ManifestEntry("k", hashlib.md5(body).hexdigest(), "etag", len(body), ref="s3://bkt/k")


def _chunked(body: bytes) -> bytes:
    out = b""
    for i in range(0, len(body), 3000):
        piece = body[i : i + 3000]
        out += f"{len(piece):x};ext=1\r\n".encode() + piece + b"\r\n"
    return out + b"0\r\nX-Trailer: t\r\n\r\n"


def test_chunked_body_and_keep_alive(scripted, tmp_path: Path) -> None:
    url, handler = scripted(
        lambda head: b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nETag: "e"\r\n\r\n' + _chunked(BODY)
    )
    s3 = S3Fetcher(url)
    for i in range(3):
        assert fetch_reference(_entry(), tmp_path / f"o{i}", s3=s3)
        assert (tmp_path / f"o{i}").read_bytes() == BODY
    assert len(handler.connections) == 1, "one connection served all three"


def test_http10_body_to_the_end_of_the_stream(scripted, tmp_path: Path) -> None:
    url, handler = scripted(lambda head: b'HTTP/1.0 200 OK\r\nETag: "e"\r\n\r\n' + BODY)
    s3 = S3Fetcher(url)
    for i in range(2):
        assert fetch_reference(_entry(), tmp_path / f"o{i}", s3=s3)
        assert (tmp_path / f"o{i}").read_bytes() == BODY
    assert len(handler.connections) == 2, "a body that ends with the stream ends the connection"


def test_a_short_body_is_an_error_naming_the_object(scripted, tmp_path: Path) -> None:
    url, _ = scripted(
        lambda head: (
            f"HTTP/1.1 200 OK\r\nContent-Length: {len(BODY)}\r\nConnection: close\r\n\r\n".encode() + BODY[:100]
        )
    )
    with pytest.raises(depot.CommError, match=r"s3://bkt/k: download interrupted after 100 bytes"):
        fetch_reference(_entry(), tmp_path / "o", s3=S3Fetcher(url))


def test_plain_http_through_a_proxy(scripted, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    proxy, handler = scripted(lambda head: f"HTTP/1.1 200 OK\r\nContent-Length: {len(BODY)}\r\n\r\n".encode() + BODY)
    monkeypatch.setenv("http_proxy", proxy.replace("http://", "http://us%40er:p%3Ass@"))
    for name in ("no_proxy", "NO_PROXY", "HTTP_PROXY"):
        monkeypatch.delenv(name, raising=False)
    s3 = S3Fetcher("http://s3.example.test:9000")
    assert fetch_reference(_entry(), tmp_path / "o", s3=s3)
    request = handler.requests[-1].decode()
    assert request.startswith("GET http://s3.example.test:9000/bkt/k HTTP/1.1\r\n")
    creds = base64.b64encode(b"us@er:p:ss").decode()
    assert f"Proxy-Authorization: Basic {creds}\r\n" in request
    assert "Host: s3.example.test:9000\r\n" in request


# -- a hostile server: lengths int() would take, conflicting framings, a drip ------------------


@pytest.mark.parametrize("length", ["-1", "+5", "1_0", "0x10", "1" * 25])
def test_a_content_length_that_is_not_ascii_digits_is_refused(scripted, tmp_path: Path, length: str) -> None:
    url, _ = scripted(lambda head: f"HTTP/1.1 200 OK\r\nContent-Length: {length}\r\n\r\n".encode() + BODY)
    with pytest.raises(depot.CommError, match="bad Content-Length"):
        fetch_reference(_entry(), tmp_path / "o", s3=S3Fetcher(url, max_attempts=1))


def test_conflicting_content_lengths_are_refused(scripted, tmp_path: Path) -> None:
    url, _ = scripted(
        lambda head: f"HTTP/1.1 200 OK\r\nContent-Length: {len(BODY)}\r\nContent-Length: 5\r\n\r\n".encode() + BODY
    )
    with pytest.raises(depot.CommError, match="conflicting Content-Length"):
        fetch_reference(_entry(), tmp_path / "o", s3=S3Fetcher(url, max_attempts=1))


def test_a_repeated_equal_content_length_is_accepted(scripted, tmp_path: Path) -> None:
    n = len(BODY)
    url, _ = scripted(
        lambda head: f"HTTP/1.1 200 OK\r\nContent-Length: {n}\r\nContent-Length: {n}\r\n\r\n".encode() + BODY
    )
    assert fetch_reference(_entry(), tmp_path / "o", s3=S3Fetcher(url))


@pytest.mark.parametrize("size_line", [b"-1", b"+a", b"0x10", b"1_0", b""])
def test_a_chunk_size_that_is_not_hex_digits_is_refused(scripted, tmp_path: Path, size_line: bytes) -> None:
    url, _ = scripted(
        lambda head: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + size_line + b"\r\n" + BODY + b"\r\n"
    )
    with pytest.raises(depot.CommError, match="bad chunk size line"):
        fetch_reference(_entry(), tmp_path / "o", s3=S3Fetcher(url, max_attempts=1))


def test_a_chunk_not_followed_by_crlf_is_refused(scripted, tmp_path: Path) -> None:
    half = len(BODY) // 2
    body = f"{half:x}\r\n".encode() + BODY[:half] + b"XY" + f"{half:x}\r\n".encode() + BODY[half:] + b"\r\n0\r\n\r\n"
    url, _ = scripted(lambda head: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
    with pytest.raises(depot.CommError, match="not followed by CRLF"):
        fetch_reference(_entry(), tmp_path / "o", s3=S3Fetcher(url, max_attempts=1))


class _Drip(socketserver.StreamRequestHandler):
    """Headers, then the body a byte at a time, each well within the read timeout (200 bytes, then closes)."""

    def handle(self) -> None:
        while self.rfile.readline() not in (b"\r\n", b""):
            pass
        self.wfile.write(f"HTTP/1.1 200 OK\r\nContent-Length: {len(BODY)}\r\n\r\n".encode())
        with contextlib.suppress(OSError):
            for b in BODY[:200]:
                self.wfile.write(bytes([b]))
                self.wfile.flush()
                time.sleep(0.05)


def test_a_server_dripping_bytes_is_cut_off_by_the_request_timeout(tmp_path: Path) -> None:
    srv = _Server(("127.0.0.1", 0), _Drip)
    threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True).start()
    try:
        s3 = S3Fetcher(f"http://127.0.0.1:{srv.server_address[1]}", timeout=30, request_timeout=0.5, max_attempts=1)
        with pytest.raises(depot.CommError, match="longer than its overall timeout"):
            fetch_reference(_entry(), tmp_path / "o", s3=s3)
    finally:
        srv.shutdown()
        srv.server_close()


def test_a_body_past_the_recorded_size_stops_there(scripted, tmp_path: Path) -> None:
    # HTTP/1.0 to the end of the stream: the peer, not a length, decides when it ends.
    url, _ = scripted(lambda head: b"HTTP/1.0 200 OK\r\n\r\n" + BODY * 300)
    dest = tmp_path / "o"
    with pytest.raises(depot.DigestMismatchError, match=f"more than the {len(BODY)} bytes recorded"):
        fetch_reference(_entry(), dest, s3=S3Fetcher(url))
    assert dest.stat().st_size <= len(BODY)


def test_a_set_stop_flag_ends_an_s3_body_in_flight(tmp_path: Path) -> None:
    stop = threading.Event()
    big = BODY * 300  # 3 MB: the client writes it in 1 MiB pieces

    class Half(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            while self.rfile.readline() not in (b"\r\n", b""):
                pass
            self.wfile.write(f"HTTP/1.1 200 OK\r\nContent-Length: {len(big)}\r\n\r\n".encode())
            self.wfile.write(big[: len(big) // 2])
            self.wfile.flush()
            stop.set()  # another file of the download failed meanwhile
            with contextlib.suppress(OSError):
                self.wfile.write(big[len(big) // 2 :])

    srv = _Server(("127.0.0.1", 0), Half)
    threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True).start()
    try:
        s3 = S3Fetcher(f"http://127.0.0.1:{srv.server_address[1]}")
        with pytest.raises(depot.DepotError, match="stopped"):
            fetch_reference(_entry(big), tmp_path / "o", s3=s3, stop=stop)
        assert (tmp_path / "o").stat().st_size < len(big)
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.mark.parametrize("var", ["https_proxy", "http_proxy"])
def test_an_https_proxy_is_refused_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, var: str) -> None:
    # Its CONNECT and Basic credentials would go in plaintext.
    for name in ("no_proxy", "NO_PROXY", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(var, "https://user:secret@127.0.0.1:9")
    scheme = var.split("_")[0]
    s3 = S3Fetcher(f"{scheme}://s3.example.test", max_attempts=1)
    with pytest.raises(depot.InvalidArgumentError, match=f"{var.upper()}: only http:// proxies") as err:
        fetch_reference(_entry(), tmp_path / "o", s3=s3)
    assert err.value.field == var.upper()


def test_a_malformed_bucket_region_never_becomes_a_hostname(
    scripted, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, handler = scripted(
        lambda head: (
            b"HTTP/1.1 301 Moved Permanently\r\nx-amz-bucket-region: evil.example/x\r\nContent-Length: 0\r\n\r\n"
        )
    )
    for name in ("DEPOT_REFERENCE_S3_ENDPOINT_URL", "DEPOT_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    for name in ("no_proxy", "NO_PROXY", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    # The endpoint reaches botocore only, so the fetcher believes it talks to AWS.
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    s3 = S3Fetcher(addressing_style="path", max_attempts=3)
    assert s3.endpoint_url is None
    with pytest.raises(depot.CommError, match="malformed region 'evil.example/x'"):
        fetch_reference(_entry(), tmp_path / "o", s3=s3)
    assert len(handler.requests) == 1
