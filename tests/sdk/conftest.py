"""An HTTP server on loopback whose files, ETags and HEAD support a test can change."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@dataclass
class Served:
    body: bytes
    etag: str | None = None  # the raw header value, quotes included


@dataclass
class FileServer:
    base: str
    files: dict[str, Served] = field(default_factory=dict)
    head_allowed: bool = True
    requests: list[tuple[str, str]] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"{self.base}/{path.lstrip('/')}"


def _handler(state: FileServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self, with_body: bool) -> None:
            path = self.path.split("?", 1)[0]
            state.requests.append((self.command, path))
            if self.command == "HEAD" and not state.head_allowed:
                self.send_response(405)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            f = state.files.get(path)
            if f is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(f.body)))
            if f.etag is not None:
                self.send_header("ETag", f.etag)
            self.end_headers()
            if with_body:
                self.wfile.write(f.body)

        def do_HEAD(self) -> None:
            self._serve(False)

        def do_GET(self) -> None:
            self._serve(True)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def http_files() -> Iterator[FileServer]:
    state = FileServer(base="")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    state.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)
