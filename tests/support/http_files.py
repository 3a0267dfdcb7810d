"""An HTTP server on loopback whose files, ETags and HEAD support a test can change.

The ``http_files`` fixture (tests/sdk/conftest.py) serves one per test.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler


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


def handler(state: FileServer) -> type[BaseHTTPRequestHandler]:
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
