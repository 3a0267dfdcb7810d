"""The lean HTTP/1.1 GET under S3 downloads: framings, a short body, keep-alive, and proxies.

A raw socket server answers exactly the bytes each test scripts, so the
framings S3-compatible servers may use (chunked, HTTP/1.0 to the end of the
stream) are exercised, not just the simulator's Content-Length.
"""

from __future__ import annotations

import base64
import hashlib
import socketserver
import threading
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
