"""A minimal HTTP/1.1 client connection for bodiless GETs, kept alive between requests.

Why not ``http.client``: it parses every response's headers through
``email.feedparser`` and builds a request through a dozen ``putheader``
calls; measured with ``bench/ref_download.py`` that is most of the
client's CPU per small S3 object after signing was made cheap. This reads
the status line and headers with ``readline`` and a split, and the body by
``Content-Length``, ``Transfer-Encoding: chunked`` or (HTTP/1.0, or
``Connection: close``) to the end of the stream.

Strict where leniency would let a hostile peer in: lengths are ASCII digits
(hex for chunk sizes), conflicting ``Content-Length`` headers and a chunk
not ended by CRLF are errors, and each request has an overall deadline
besides the per-read timeout, so a server dripping a byte at a time cannot
hold a worker forever.

Scope, on purpose: GET without a body; https through the caller's
``SSLContext`` (hostname checked); a proxy by the absolute-form target
(http) or a ``CONNECT`` tunnel (https). No redirects, no decompression (S3
sends none unless the object was stored with a Content-Encoding, and then
the stored bytes are what its ETag covers).
"""

from __future__ import annotations

import io
import re
import socket
import ssl
import time
from collections.abc import Iterator
from typing import BinaryIO

__all__ = ["DEFAULT_REQUEST_TIMEOUT_S", "Connection", "HTTPError", "Response"]

_MAX_LINE = 65536
_MAX_HEADERS = 200
# A request's whole life, headers and body: generous (a multi-GB object on
# a slow link), yet finite.
DEFAULT_REQUEST_TIMEOUT_S = 3600.0
_DIGITS = re.compile(r"[0-9]{1,19}")
_HEX = re.compile(rb"[0-9A-Fa-f]{1,15}")


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
            left = _content_length(self.headers["content-length"])
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
            # Hex digits, then optional extensions after ";" (ignored).
            head = line.rstrip(b"\r\n").split(b";", 1)[0].strip(b" \t")
            if not line.endswith(b"\n") or not _HEX.fullmatch(head):
                raise HTTPError(f"bad chunk size line {line[:40]!r}")
            left = int(head, 16)
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
            if f.readline(3) not in (b"\r\n", b"\n"):
                raise HTTPError("a chunk not followed by CRLF")

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
        request_timeout: Seconds a request may take in all, from sending it
            to the last byte of its body.
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
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT_S,
    ) -> None:
        self.scheme = scheme
        self.host = host
        self.timeout = timeout
        self.ssl_context = ssl_context
        self.proxy = proxy
        self.proxy_headers = proxy_headers or {}
        self.request_timeout = request_timeout
        self._sock: socket.socket | None = None
        self._raw: _DeadlineReader | None = None
        self._file: BinaryIO | None = None

    def reader(self) -> BinaryIO:
        assert self._file is not None
        return self._file

    def _open(self) -> None:
        name, port = _split(self.proxy or self.host, 443 if self.scheme == "https" and not self.proxy else 80)
        # The connect and the tunnel count against the first request's deadline.
        deadline = time.monotonic() + self.request_timeout
        sock = socket.create_connection((name, port), min(self.timeout, self.request_timeout))
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.scheme == "https":
                if self.proxy:
                    self._tunnel(sock, deadline)
                ctx = self.ssl_context or ssl.create_default_context()
                sock = ctx.wrap_socket(sock, server_hostname=_split(self.host, 443)[0])
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._raw = _DeadlineReader(sock, self.timeout)
        self._file = io.BufferedReader(self._raw, 65536)

    def _tunnel(self, sock: socket.socket, deadline: float) -> None:
        name, port = _split(self.host, 443)
        lines = [f"CONNECT {name}:{port} HTTP/1.1", f"Host: {name}:{port}"]
        lines += [f"{k}: {v}" for k, v in self.proxy_headers.items()]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        raw = _DeadlineReader(sock, self.timeout)
        raw.deadline = deadline
        # Unbuffered: the TLS handshake that follows reads the socket itself.
        f = io.BufferedReader(raw, 1)
        try:
            status, reason, _ = _read_head(f)
        finally:
            f.detach()
        if status != 200:
            raise HTTPError(f"proxy refused the tunnel to {name}:{port}: {status} {reason}")

    def get(self, target: str, headers: dict[str, str]) -> Response:
        """Sends ``GET target`` and reads the status and headers; the caller reads the body."""
        if self._sock is None:
            self._open()
        assert self._sock is not None and self._raw is not None
        self._raw.deadline = time.monotonic() + self.request_timeout
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
            key, value = name.strip().lower(), value.strip()
            if key == "content-length" and headers.get(key, value) != value:
                # Two lengths: which body ends where is ambiguous (request smuggling's trick).
                raise HTTPError("conflicting Content-Length headers")
            headers[key] = value
    else:
        raise HTTPError("too many response headers")
    if version == "HTTP/1.0" and headers.get("connection", "").lower() != "keep-alive":
        headers["connection"] = "close"
    return status, parts[2] if len(parts) > 2 else "", headers


def _content_length(value: str) -> int:
    # int() would take "-1", "+5", " 7" and "1_0".
    if not _DIGITS.fullmatch(value):
        raise HTTPError(f"bad Content-Length {value[:40]!r}")
    return int(value)


class _DeadlineReader(io.RawIOBase):
    """The socket's reads, each bounded by the read timeout and by the request's deadline."""

    def __init__(self, sock: socket.socket, timeout: float) -> None:
        self.sock = sock
        self.timeout = timeout
        self.deadline = float("inf")
        self._set = sock.gettimeout()

    def readable(self) -> bool:
        return True

    def readinto(self, buf: memoryview) -> int:  # type: ignore[override]
        wait = min(self.timeout, self.deadline - time.monotonic())
        if wait <= 0:
            raise HTTPError("the request took longer than its overall timeout") from None
        if wait != self._set:
            # Only near the deadline: settimeout is a syscall.
            self.sock.settimeout(wait)
            self._set = wait
        try:
            return self.sock.recv_into(buf)
        except TimeoutError:
            if wait < self.timeout:
                raise HTTPError("the request took longer than its overall timeout") from None
            raise


def _split(hostport: str, default: int) -> tuple[str, int]:
    if hostport.startswith("["):  # [v6]:port
        name, _, rest = hostport[1:].partition("]")
        return name, int(rest[1:]) if rest.startswith(":") else default
    name, sep, port = hostport.rpartition(":")
    if sep and port.isdigit():
        return name, int(port)
    return hostport, default
