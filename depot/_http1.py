"""A minimal HTTP/1.1 client connection for bodiless GETs, kept alive between requests.

Why not ``http.client``: it parses every response's headers through
``email.feedparser`` and builds a request through a dozen ``putheader``
calls; measured with ``bench/ref_download.py`` that is most of the
client's CPU per small S3 object after signing was made cheap. This reads
the status line and headers with ``readline`` and a split, and the body by
``Content-Length``, ``Transfer-Encoding: chunked`` or (HTTP/1.0, or
``Connection: close``) to the end of the stream.

Scope, on purpose: GET without a body; https through the caller's
``SSLContext`` (hostname checked); a proxy by the absolute-form target
(http) or a ``CONNECT`` tunnel (https). No redirects, no decompression (S3
sends none unless the object was stored with a Content-Encoding, and then
the stored bytes are what its ETag covers).
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from typing import BinaryIO

__all__ = ["Connection", "HTTPError", "Response"]

_MAX_LINE = 65536
_MAX_HEADERS = 200


class HTTPError(OSError):
    """The peer broke the protocol or the connection; the request may be retried."""


class Response:
    """Status, headers (names lowercased) and the body, read with ``chunks()`` or ``read_all()``."""

    def __init__(self, conn: Connection, status: int, reason: str, headers: dict[str, str], keep_alive: bool) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers
        self._conn = conn
        self._keep_alive = keep_alive
        self.complete = False  # the body was read to its end: the connection can serve the next request

    @property
    def reusable(self) -> bool:
        return self.complete and self._keep_alive

    def chunks(self, size: int) -> Iterator[bytes]:
        """The body, in pieces of at most ``size`` bytes."""
        f = self._conn.reader()
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            yield from self._chunked(f, size)
        elif "content-length" in self.headers:
            try:
                left = int(self.headers["content-length"])
            except ValueError:
                raise HTTPError(f"bad Content-Length {self.headers['content-length']!r}") from None
            while left > 0:
                piece = f.read(min(size, left))
                if not piece:
                    raise HTTPError(f"connection closed with {left} bytes of the body unread")
                left -= len(piece)
                yield piece
        else:
            self._keep_alive = False  # the body ends with the stream
            while piece := f.read(size):
                yield piece
        self.complete = True

    def _chunked(self, f: BinaryIO, size: int) -> Iterator[bytes]:
        while True:
            line = f.readline(_MAX_LINE)
            try:
                left = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise HTTPError(f"bad chunk size line {line[:40]!r}") from None
            if left == 0:
                while f.readline(_MAX_LINE) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return
            while left > 0:
                piece = f.read(min(size, left))
                if not piece:
                    raise HTTPError("connection closed inside a chunk")
                left -= len(piece)
                yield piece
            f.readline(_MAX_LINE)  # the CRLF after the chunk

    def read_all(self, limit: int = 1 << 20) -> bytes:
        """The whole body (an error document), at most ``limit`` bytes kept."""
        out = bytearray()
        for piece in self.chunks(65536):
            if len(out) < limit:
                out += piece
        return bytes(out)


class Connection:
    """One keep-alive connection to ``host`` (``name[:port]``), opened on first use.

    Args:
        scheme: ``http`` or ``https``.
        host: The origin's ``name[:port]``, as the Host header carries it.
        timeout: Seconds a connect, send or receive may block.
        ssl_context: For https (default: the system's trust store).
        proxy: ``name[:port]`` of an HTTP proxy, or empty.
        proxy_headers: Sent to the proxy (``Proxy-Authorization``).
    """

    def __init__(
        self,
        scheme: str,
        host: str,
        *,
        timeout: float,
        ssl_context: ssl.SSLContext | None = None,
        proxy: str = "",
        proxy_headers: dict[str, str] | None = None,
    ) -> None:
        self.scheme = scheme
        self.host = host
        self.timeout = timeout
        self.ssl_context = ssl_context
        self.proxy = proxy
        self.proxy_headers = proxy_headers or {}
        self._sock: socket.socket | None = None
        self._file: BinaryIO | None = None

    def reader(self) -> BinaryIO:
        assert self._file is not None
        return self._file

    def _open(self) -> None:
        name, port = _split(self.proxy or self.host, 443 if self.scheme == "https" and not self.proxy else 80)
        sock = socket.create_connection((name, port), self.timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.scheme == "https":
                if self.proxy:
                    self._tunnel(sock)
                ctx = self.ssl_context or ssl.create_default_context()
                sock = ctx.wrap_socket(sock, server_hostname=_split(self.host, 443)[0])
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._file = sock.makefile("rb", buffering=65536)  # type: ignore[assignment]

    def _tunnel(self, sock: socket.socket) -> None:
        name, port = _split(self.host, 443)
        lines = [f"CONNECT {name}:{port} HTTP/1.1", f"Host: {name}:{port}"]
        lines += [f"{k}: {v}" for k, v in self.proxy_headers.items()]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        f = sock.makefile("rb")
        try:
            status, reason, _ = _read_head(f)
        finally:
            f.close()
        if status != 200:
            raise HTTPError(f"proxy refused the tunnel to {name}:{port}: {status} {reason}")

    def get(self, target: str, headers: dict[str, str]) -> Response:
        """Sends ``GET target`` and reads the status and headers; the caller reads the body."""
        if self._sock is None:
            self._open()
        assert self._sock is not None
        if self.proxy and self.scheme == "http":
            target = f"http://{self.host}{target}"
            headers = {**headers, **self.proxy_headers}
        lines = [f"GET {target} HTTP/1.1", f"Host: {self.host}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        self._sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        status, reason, head = _read_head(self.reader())
        keep = head.get("connection", "").lower()
        return Response(self, status, reason, head, keep_alive=keep != "close")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _read_head(f: BinaryIO) -> tuple[int, str, dict[str, str]]:
    line = f.readline(_MAX_LINE)
    if not line:
        raise HTTPError("connection closed before a response")
    parts = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
    try:
        version, status = parts[0], int(parts[1])
    except (IndexError, ValueError):
        raise HTTPError(f"not an HTTP status line: {line[:60]!r}") from None
    headers: dict[str, str] = {}
    for _ in range(_MAX_HEADERS):
        raw = f.readline(_MAX_LINE)
        if raw in (b"\r\n", b"\n"):
            break
        if not raw:
            raise HTTPError("connection closed inside the response headers")
        name, sep, value = raw.decode("latin-1").partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    else:
        raise HTTPError("too many response headers")
    if version == "HTTP/1.0" and headers.get("connection", "").lower() != "keep-alive":
        headers["connection"] = "close"
    return status, parts[2] if len(parts) > 2 else "", headers


def _split(hostport: str, default: int) -> tuple[str, int]:
    if hostport.startswith("["):  # [v6]:port
        name, _, rest = hostport[1:].partition("]")
        return name, int(rest[1:]) if rest.startswith(":") else default
    name, sep, port = hostport.rpartition(":")
    if sep and port.isdigit():
        return name, int(port)
    return hostport, default
