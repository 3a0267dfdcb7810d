"""A small, fast S3 REST protocol simulator over a synthetic key space.

It is for scale and fault tests of reference listing, not for S3 semantics
(moto is the reference for those). No key is stored: key ``i`` is computed
from ``i``, and the key formula is monotonic in ``i``, so prefix, StartAfter,
continuation and marker lookups are binary searches over ``i``.

Layouts (``n`` objects, ``i`` in ``[0, n)``):

- ``nested``: ``dataset/part-{i//1000:05d}/obj-{i:08d}.bin``
- ``flat``:   ``flat/obj-{i:08d}.bin``

Per key ``k`` (all deterministic):

- body: empty when ``i % 97 == 0`` (zero-byte objects exist), else
  ``FILLER[:pad(i)] + k`` with ``pad(i) = (i * 7919) % filler_max`` rounded
  down to a multiple of 64 (``filler_max`` default 64 KiB, so sizes spread
  from ``len(k)`` to 64 KiB; ``filler_max=0`` makes the body the key itself).
- size: ``len(body)``.
- ETag: ``md5(body).hexdigest()``, a REAL one, so a client can verify what it
  downloads. It costs no more than hashing the key: the filler comes first and
  its length is a whole number of md5 blocks, so the md5 state after every
  possible filler is computed once and a key's ETag is that state, copied,
  fed the key's few bytes.
- versioned buckets (``versioned=True``): version id ``md5("v" + k)``; when
  ``delete_every > 0`` every key with ``i % delete_every == delete_every - 1``
  has a latest delete marker over an older version (so it is not a live object).

Operations (path-style only: ``/{bucket}/{key}``; any bucket name is served,
the space of ``objects`` keys unless ``buckets`` gives that name its own count,
e.g. a small bucket for a download beside a 10M-key one):
ListObjectsV2 (prefix, delimiter, start-after, continuation-token, max-keys,
encoding-type ignored), ListObjectVersions (prefix, key-marker,
version-id-marker, max-keys, delimiter), ListObjects v1 (marker), HeadObject,
GetObject (with a simple ``Range: bytes=a-b``), HeadBucket,
GetBucketVersioning, GetBucketLocation.

Knobs: per-request latency, a global concurrency cap (requests beyond it
queue), and seeded injected faults: 503 SlowDown, 500 InternalError, 403
AccessDenied, and connection resets (the socket is aborted without a
response). Each rate is a per-request probability; 1.0 makes the fault
permanent. ``fault_after`` lets that many requests through untouched first
(a bucket that fails mid-listing). ``slowdown_above`` throttles by load, as
S3 does: a request arriving while more than that many are in flight gets
SlowDown.

Use::

    python bench/s3sim.py --objects 1000000 --layout nested --latency-ms 20 --port 0
    # prints "http://127.0.0.1:PORT" on the first line of stdout

    with start_simulator(objects=1000) as sim:    # background thread
        sim.endpoint_url
    async with Simulator(objects=1000) as sim:    # in the running loop
        ...
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import dataclasses
import email.utils
import hashlib
import random
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, unquote
from xml.sax.saxutils import escape

from s3store import ObjectStore  # bench/s3store.py: the stateful mode (bench/ is on the path)

__all__ = ["KeySpace", "SimConfig", "Simulator", "SimulatorThread", "start_simulator", "main"]

_NS = "http://s3.amazonaws.com/doc/2006-03-01/"
_LAST_MODIFIED = "2024-01-01T00:00:00.000Z"
_HTTP_LAST_MODIFIED = "Mon, 01 Jan 2024 00:00:00 GMT"
_OWNER = "<Owner><ID>depot-sim</ID><DisplayName>depot-sim</DisplayName></Owner>"
# 64 KiB of deterministic filler: the head of every non-empty body.
_FILLER = bytes(range(256)) * 256
_MD5_BLOCK = 64
_EMPTY_MD5 = hashlib.md5(b"").hexdigest()
_REASONS = {
    200: "OK",
    206: "Partial Content",
    304: "Not Modified",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    416: "Requested Range Not Satisfiable",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
}


class KeySpace:
    """The synthetic, sorted key space: key, body, size, ETag, version id of object ``i``."""

    def __init__(
        self,
        n: int,
        layout: str = "nested",
        *,
        versioned: bool = False,
        delete_every: int = 0,
        filler_max: int = len(_FILLER),
    ) -> None:
        if layout not in ("nested", "flat"):
            raise ValueError(f"layout must be nested or flat, not {layout!r}")
        if not 0 <= n <= 10**8:
            raise ValueError("objects must be in [0, 1e8]")
        if not 0 <= filler_max <= len(_FILLER):
            raise ValueError(f"filler_max must be in [0, {len(_FILLER)}]")
        self.n = n
        self.layout = layout
        self.versioned = versioned
        self.delete_every = delete_every if versioned else 0
        self.filler_max = filler_max
        self.key = self._nested_key if layout == "nested" else self._flat_key
        self.key_len = len(self.key(0))  # every key of a layout has the same length
        # md5 state after FILLER[:64 * b], for every block count b a pad can have.
        h = hashlib.md5()
        self._states = [h.copy()]
        for b in range(filler_max // _MD5_BLOCK):
            h.update(_FILLER[b * _MD5_BLOCK : (b + 1) * _MD5_BLOCK])
            self._states.append(h.copy())

    @staticmethod
    def _nested_key(i: int) -> str:
        return f"dataset/part-{i // 1000:05d}/obj-{i:08d}.bin"

    @staticmethod
    def _flat_key(i: int) -> str:
        return f"flat/obj-{i:08d}.bin"

    def _blocks(self, i: int) -> int:
        """Filler length of object ``i`` in md5 blocks."""
        return (i * 7919) % self.filler_max // _MD5_BLOCK if self.filler_max else 0

    def size(self, i: int) -> int:
        return 0 if i % 97 == 0 else self._blocks(i) * _MD5_BLOCK + self.key_len

    def etag(self, i: int, key: str) -> str:
        """md5 of object ``i``'s body; ``key`` is ``self.key(i)``, passed in by callers that have it."""
        if i % 97 == 0:
            return _EMPTY_MD5
        h = self._states[self._blocks(i)].copy()
        h.update(key.encode())
        return h.hexdigest()

    def etags_sizes(self, idx: list[int], keys: list[str]) -> list[tuple[str, int]]:
        """(ETag, size) of objects ``idx`` with keys ``keys``: ``etag`` and ``size`` inlined for listing pages."""
        states, fmax, klen, out = self._states, self.filler_max, self.key_len, []
        for i, k in zip(idx, keys):
            if i % 97 == 0:
                out.append((_EMPTY_MD5, 0))
                continue
            b = (i * 7919) % fmax // _MD5_BLOCK if fmax else 0
            h = states[b].copy()
            h.update(k.encode())
            out.append((h.hexdigest(), b * _MD5_BLOCK + klen))
        return out

    def etag_of(self, key: str) -> str:
        i = self.index_of(key)
        if i is None:
            raise KeyError(key)
        return self.etag(i, key)

    @staticmethod
    def version_id_of(key: str) -> str:
        return hashlib.md5(("v" + key).encode()).hexdigest()

    @staticmethod
    def marker_id_of(key: str) -> str:
        return hashlib.md5(("d" + key).encode()).hexdigest()

    def deleted(self, i: int) -> bool:
        d = self.delete_every
        return d > 0 and i % d == d - 1

    def body(self, i: int) -> bytes:
        if i % 97 == 0:
            return b""
        return _FILLER[: self._blocks(i) * _MD5_BLOCK] + self.key(i).encode()

    # -- searches (keys are sorted by i) -------------------------------------------------

    def first_ge(self, s: str) -> int:
        lo, hi, key = 0, self.n, self.key
        while lo < hi:
            mid = (lo + hi) // 2
            if key(mid) < s:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def first_gt(self, s: str) -> int:
        lo, hi, key = 0, self.n, self.key
        while lo < hi:
            mid = (lo + hi) // 2
            if key(mid) <= s:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def prefix_end(self, p: str, start: int) -> int:
        """First index >= start whose key neither sorts before ``p`` nor starts with it."""
        lo, hi, key = start, self.n, self.key
        while lo < hi:
            mid = (lo + hi) // 2
            k = key(mid)
            if k < p or k.startswith(p):
                lo = mid + 1
            else:
                hi = mid
        return lo

    def index_of(self, k: str) -> int | None:
        i = self.first_ge(k)
        return i if i < self.n and self.key(i) == k else None

    def expected_entries(self) -> Iterator[tuple[str, str, int, str]]:  # pragma: no cover - for tests/bench
        """(key, etag, size, version_id) of every live object, in key order."""
        for i in range(self.n):
            if self.deleted(i):
                continue
            k = self.key(i)
            yield k, self.etag(i, k), self.size(i), (self.version_id_of(k) if self.versioned else "")


@dataclasses.dataclass
class SimConfig:
    objects: int = 1000
    layout: str = "nested"
    versioned: bool = False
    delete_every: int = 0
    filler_max: int = len(_FILLER)  # bytes of filler before the key in a body; 0 = the body is the key
    buckets: dict[str, int] = dataclasses.field(default_factory=dict)  # bucket -> its own object count
    latency_ms: float = 0.0
    concurrency_cap: int = 0  # 0 = unlimited
    slowdown_rate: float = 0.0
    error500_rate: float = 0.0
    reset_rate: float = 0.0
    access_denied_rate: float = 0.0
    fault_after: int = 0  # requests served before faults start
    slowdown_above: int = 0  # 0 = off; SlowDown when more than this many requests are in flight
    seed: int = 0
    host: str = "127.0.0.1"
    port: int = 0
    region: str = "us-east-1"
    stateful: bool = False  # keep what is PUT (bench/s3store.py) instead of the synthetic space


class _Stats:
    def __init__(self) -> None:
        self.requests = 0
        self.slowdowns = 0
        self.errors500 = 0
        self.resets = 0
        self.denied = 0
        self.list_pages = 0
        self.in_flight = 0
        self.peak_in_flight = 0


def _xml(body: str) -> bytes:
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + body).encode()


def _error_xml(code: str, message: str, resource: str = "") -> bytes:
    return _xml(
        f"<Error><Code>{code}</Code><Message>{escape(message)}</Message>"
        f"<Resource>{escape(resource)}</Resource><RequestId>SIMREQ</RequestId></Error>"
    )


class Simulator:
    """The server; ``async with Simulator(...)`` runs it on the current loop."""

    def __init__(self, config: SimConfig | None = None, **kw: Any) -> None:
        self.config = config or SimConfig(**kw)
        c = self.config
        opts: dict[str, Any] = {"versioned": c.versioned, "delete_every": c.delete_every, "filler_max": c.filler_max}
        self.space = KeySpace(c.objects, c.layout, **opts)
        self.spaces = {name: KeySpace(n, c.layout, **opts) for name, n in c.buckets.items()}
        self.stats = _Stats()
        self.store = ObjectStore() if c.stateful else None
        self._rng = random.Random(c.seed)
        self._sem: asyncio.Semaphore | None = None
        self._server: asyncio.base_events.Server | None = None
        self._conns: set[asyncio.StreamWriter] = set()
        # Connection handlers, cancelled by stop(): one left sleeping in a
        # simulated latency would otherwise outlive its closed event loop.
        self._handlers: set[asyncio.Task[None]] = set()
        self._date = ""
        self._date_at = 0.0
        self.endpoint_url = ""

    async def start(self) -> Simulator:
        c = self.config
        if c.concurrency_cap > 0:
            self._sem = asyncio.Semaphore(c.concurrency_cap)
        self._server = await asyncio.start_server(self._serve_conn, c.host, c.port, limit=1 << 20, backlog=1024)
        host, port = self._server.sockets[0].getsockname()[:2]
        self.endpoint_url = f"http://{host}:{port}"
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for w in list(self._conns):
                w.transport.abort()
            for t in list(self._handlers):
                t.cancel()
            await asyncio.gather(*self._handlers, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> Simulator:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- HTTP ----------------------------------------------------------------------------

    def _http_date(self) -> str:
        now = time.time()
        if now - self._date_at >= 1.0:
            self._date = email.utils.formatdate(now, usegmt=True)
            self._date_at = now
        return self._date

    async def _serve_conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._conns.add(writer)
        me = asyncio.current_task()
        if me is not None:
            self._handlers.add(me)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                try:
                    method, target, _version = lines[0].split(" ", 2)
                except ValueError:
                    return
                headers: dict[str, str] = {}
                for line in lines[1:]:
                    if line:
                        name, _, value = line.partition(":")
                        headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0") or 0)
                if headers.get("expect", "").lower() == "100-continue":
                    writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                payload = b""
                if length:
                    try:
                        payload = await reader.readexactly(length)
                    except (asyncio.IncompleteReadError, ConnectionError):
                        return
                keep = headers.get("connection", "").lower() != "close"
                if not await self._respond(method, target, headers, writer, keep, payload):
                    return
                if not keep:
                    return
        finally:
            self._conns.discard(writer)
            if me is not None:
                self._handlers.discard(me)
            writer.close()

    async def _respond(
        self,
        method: str,
        target: str,
        headers: dict[str, str],
        writer: asyncio.StreamWriter,
        keep: bool,
        payload: bytes = b"",
    ) -> bool:
        c = self.config
        self.stats.requests += 1
        sem = self._sem
        if sem is not None:
            await sem.acquire()
        st = self.stats
        st.in_flight += 1
        st.peak_in_flight = max(st.peak_in_flight, st.in_flight)
        overloaded = 0 < c.slowdown_above < st.in_flight
        try:
            if c.latency_ms > 0:
                await asyncio.sleep(c.latency_ms / 1000.0)
            faulty = c.slowdown_rate or c.error500_rate or c.reset_rate or c.access_denied_rate
            r = self._rng.random() if faulty and st.requests > c.fault_after else 1.0
            if overloaded:
                r = c.reset_rate  # falls into the SlowDown branch below
            if r < c.reset_rate:
                self.stats.resets += 1
                writer.transport.abort()
                return False
            r -= c.reset_rate
            if overloaded or r < c.slowdown_rate:
                self.stats.slowdowns += 1
                status, hdrs, body = (
                    503,
                    {"Content-Type": "application/xml"},
                    _error_xml("SlowDown", "Please reduce your request rate."),
                )
            elif r - c.slowdown_rate < c.error500_rate:
                self.stats.errors500 += 1
                status, hdrs, body = (
                    500,
                    {"Content-Type": "application/xml"},
                    _error_xml("InternalError", "We encountered an internal error. Please try again."),
                )
            elif r - c.slowdown_rate - c.error500_rate < c.access_denied_rate:
                self.stats.denied += 1
                status, hdrs, body = (
                    403,
                    {"Content-Type": "application/xml"},
                    _error_xml("AccessDenied", "Access Denied"),
                )
            else:
                try:
                    if self.store is not None:
                        status, hdrs, body = self.store.handle(method, target, headers, payload)
                    else:
                        status, hdrs, body = self._handle(method, target, headers)
                except Exception as e:  # a bug in the simulator must not hang the client
                    status, hdrs, body = (
                        500,
                        {"Content-Type": "application/xml"},
                        _error_xml("InternalError", f"simulator: {e!r}"),
                    )
        finally:
            st.in_flight -= 1
            if sem is not None:
                sem.release()
        out = [
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}",
            f"Date: {self._http_date()}",
            "Server: depot-s3sim",
            "x-amz-request-id: SIMREQ",
            f"x-amz-bucket-region: {c.region}",
        ]
        for k, v in hdrs.items():
            out.append(f"{k}: {v}")
        if "Content-Length" not in hdrs:
            out.append(f"Content-Length: {len(body)}")
        if not keep:
            out.append("Connection: close")
        head = ("\r\n".join(out) + "\r\n\r\n").encode("latin-1")
        writer.write(head if method == "HEAD" else head + body)
        try:
            await writer.drain()
        except ConnectionError:
            return False
        return True

    # -- S3 ------------------------------------------------------------------------------

    def _handle(self, method: str, target: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        path, _, query = target.partition("?")
        q = dict(parse_qsl(query, keep_blank_values=True))
        path = unquote(path)
        bucket, _, key = path.lstrip("/").partition("/")
        xml_hdr = {"Content-Type": "application/xml"}
        if not bucket:
            return 501, xml_hdr, _error_xml("NotImplemented", "ListBuckets is not simulated")
        if method not in ("GET", "HEAD"):
            return 501, xml_hdr, _error_xml("NotImplemented", f"{method} is not simulated", path)
        sp = self.spaces.get(bucket, self.space)
        if not key:
            if method == "HEAD":
                return 200, {}, b""
            if "versioning" in q:
                status = "<Status>Enabled</Status>" if self.config.versioned else ""
                return 200, xml_hdr, _xml(f'<VersioningConfiguration xmlns="{_NS}">{status}</VersioningConfiguration>')
            if "location" in q:
                region = "" if self.config.region == "us-east-1" else self.config.region
                return 200, xml_hdr, _xml(f'<LocationConstraint xmlns="{_NS}">{region}</LocationConstraint>')
            if "versions" in q:
                self.stats.list_pages += 1
                return 200, xml_hdr, self._list_versions(sp, bucket, q)
            if q.get("list-type") == "2" or "list-type" not in q:
                self.stats.list_pages += 1
                return 200, xml_hdr, self._list_v2(sp, bucket, q, v1="list-type" not in q)
            return 400, xml_hdr, _error_xml("InvalidArgument", "unsupported bucket operation")
        return self._object(sp, method, key, q, headers)

    def _object(
        self, sp: KeySpace, method: str, key: str, q: dict[str, str], headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        i = sp.index_of(key)
        xml_hdr = {"Content-Type": "application/xml"}
        vid_q = q.get("versionId")
        if i is None:
            return 404, xml_hdr, _error_xml("NoSuchKey", "The specified key does not exist.", key)
        hdrs = {
            "ETag": f'"{sp.etag(i, key)}"',
            "Last-Modified": _HTTP_LAST_MODIFIED,
            "Content-Type": "binary/octet-stream",
            "Accept-Ranges": "bytes",
        }
        if sp.versioned:
            vid = sp.version_id_of(key)
            if vid_q is not None:
                if sp.deleted(i) and vid_q == sp.marker_id_of(key):
                    return (
                        405,
                        {"x-amz-delete-marker": "true", **xml_hdr},
                        _error_xml("MethodNotAllowed", "The specified method is not allowed against this resource."),
                    )
                if vid_q != vid:
                    return 404, xml_hdr, _error_xml("NoSuchVersion", "The specified version does not exist.")
            elif sp.deleted(i):
                return (
                    404,
                    {"x-amz-delete-marker": "true", **xml_hdr},
                    _error_xml("NoSuchKey", "The specified key does not exist.", key),
                )
            hdrs["x-amz-version-id"] = vid
        elif vid_q is not None and vid_q != "null":
            return 400, xml_hdr, _error_xml("InvalidArgument", "Invalid version id specified")
        size = sp.size(i)
        rng = headers.get("range", "")
        if method == "GET" and rng.startswith("bytes=") and size:
            a, _, b = rng[6:].partition("-")
            try:
                if a:
                    start, end = int(a), min(int(b) if b else size - 1, size - 1)
                else:
                    start, end = max(size - int(b), 0), size - 1
            except ValueError:
                start, end = 0, size - 1
            if start > end or start >= size:
                return 416, xml_hdr, _error_xml("InvalidRange", "The requested range is not satisfiable")
            hdrs["Content-Range"] = f"bytes {start}-{end}/{size}"
            return 206, hdrs, sp.body(i)[start : end + 1]
        if method == "HEAD":
            hdrs["Content-Length"] = str(size)
            return 200, hdrs, b""
        return 200, hdrs, sp.body(i)

    @staticmethod
    def _max_keys(q: dict[str, str]) -> int:
        try:
            return max(0, min(1000, int(q.get("max-keys", "1000"))))
        except ValueError:
            return 1000

    def _scan(
        self, sp: KeySpace, prefix: str, start: int, end: int, delimiter: str, max_keys: int, versions: bool = False
    ) -> tuple[list[int], list[str], int]:
        """Objects and common prefixes from index ``start``; returns (indices, prefixes, next)."""
        key = sp.key
        idx: list[int] = []
        cps: list[str] = []
        i = start
        plen = len(prefix)
        while i < end and len(idx) + len(cps) < max_keys:
            k = key(i)
            if delimiter:
                d = k.find(delimiter, plen)
                if d >= 0:
                    cp = k[: d + len(delimiter)]
                    cps.append(cp)
                    i = sp.prefix_end(cp, i)
                    continue
            idx.append(i)
            i += 1
        return idx, cps, i

    def _list_v2(self, sp: KeySpace, bucket: str, q: dict[str, str], v1: bool = False) -> bytes:
        prefix = q.get("prefix", "")
        delimiter = q.get("delimiter", "")
        max_keys = self._max_keys(q)
        lo = sp.first_ge(prefix) if prefix else 0
        hi = sp.prefix_end(prefix, lo) if prefix else sp.n
        after = ""
        if v1:
            after = q.get("marker", "")
        else:
            token = q.get("continuation-token")
            if token:
                after = base64.urlsafe_b64decode(token.encode()).decode()
            else:
                after = q.get("start-after", "")
        start = max(lo, sp.first_gt(after)) if after else lo
        if delimiter and after.endswith(delimiter) and after.startswith(prefix):
            start = sp.prefix_end(after, start)  # continuing after a common prefix
        idx, cps, nxt = self._scan(sp, prefix, start, hi, delimiter, max_keys)
        truncated = nxt < hi
        key = sp.key
        parts = [f'<ListBucketResult xmlns="{_NS}"><Name>{escape(bucket)}</Name><Prefix>{escape(prefix)}</Prefix>']
        if v1:
            parts.append(f"<Marker>{escape(after)}</Marker>")
        else:
            parts.append(f"<KeyCount>{len(idx) + len(cps)}</KeyCount>")
            if q.get("continuation-token"):
                parts.append(f"<ContinuationToken>{escape(q['continuation-token'])}</ContinuationToken>")
            if q.get("start-after"):
                parts.append(f"<StartAfter>{escape(q['start-after'])}</StartAfter>")
        parts.append(f"<MaxKeys>{max_keys}</MaxKeys>")
        if delimiter:
            parts.append(f"<Delimiter>{escape(delimiter)}</Delimiter>")
        parts.append(f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>")
        ks = [key(j) for j in idx]
        last = ""
        if truncated:
            last = max(ks[-1] if ks else "", cps[-1] if cps else "")
            if v1:
                if delimiter:
                    parts.append(f"<NextMarker>{escape(last)}</NextMarker>")
            else:
                tok = base64.urlsafe_b64encode(last.encode()).decode()
                parts.append(f"<NextContinuationToken>{tok}</NextContinuationToken>")
        # Synthetic keys need no XML escaping (ASCII letters, digits, '/', '-', '.').
        tmpl = (
            "<Contents><Key>%s</Key><LastModified>"
            + _LAST_MODIFIED
            + "</LastModified><ETag>&quot;%s&quot;</ETag><Size>%d</Size>"
            "<StorageClass>STANDARD</StorageClass></Contents>"
        )
        parts.append("".join([tmpl % (k, e, n) for k, (e, n) in zip(ks, sp.etags_sizes(idx, ks))]))
        # Objects and prefixes are each sorted; S3 lists them as separate runs.
        for cp in cps:
            parts.append(f"<CommonPrefixes><Prefix>{escape(cp)}</Prefix></CommonPrefixes>")
        parts.append("</ListBucketResult>")
        return _xml("".join(parts))

    def _list_versions(self, sp: KeySpace, bucket: str, q: dict[str, str]) -> bytes:
        prefix = q.get("prefix", "")
        delimiter = q.get("delimiter", "")
        max_keys = self._max_keys(q)
        key_marker = q.get("key-marker", "")
        vid_marker = q.get("version-id-marker", "")
        lo = sp.first_ge(prefix) if prefix else 0
        hi = sp.prefix_end(prefix, lo) if prefix else sp.n
        # Position = (object index, version slot); slot 0 is the latest entry.
        start, slot = lo, 0
        if key_marker:
            start = max(lo, sp.first_gt(key_marker))
            if delimiter and key_marker.endswith(delimiter) and key_marker.startswith(prefix):
                start = sp.prefix_end(key_marker, start)
            if vid_marker:
                mi = sp.index_of(key_marker)
                if mi is not None and mi >= lo and sp.deleted(mi) and vid_marker == sp.marker_id_of(key_marker):
                    start, slot = mi, 1
        entries: list[tuple[int, int]] = []  # (index, slot) ; slot 0 latest, 1 older version
        cps: list[str] = []
        i = start
        key = sp.key
        plen = len(prefix)
        while i < hi and len(entries) + len(cps) < max_keys:
            if delimiter and slot == 0:
                k = key(i)
                d = k.find(delimiter, plen)
                if d >= 0:
                    cp = k[: d + len(delimiter)]
                    cps.append(cp)
                    i = sp.prefix_end(cp, i)
                    continue
            nslots = 2 if sp.deleted(i) else 1
            entries.append((i, slot))
            slot += 1
            if slot >= nslots:
                i, slot = i + 1, 0
        truncated = i < hi
        parts = [
            f'<ListVersionsResult xmlns="{_NS}"><Name>{escape(bucket)}</Name>'
            f"<Prefix>{escape(prefix)}</Prefix><KeyMarker>{escape(key_marker)}</KeyMarker>"
            f"<VersionIdMarker>{escape(vid_marker)}</VersionIdMarker>"
            f"<MaxKeys>{max_keys}</MaxKeys>"
        ]
        if delimiter:
            parts.append(f"<Delimiter>{escape(delimiter)}</Delimiter>")
        parts.append(f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>")
        if truncated:
            if entries and (not cps or key(entries[-1][0]) > cps[-1]):
                j, s = entries[-1]
                k = key(j)
                vid = sp.marker_id_of(k) if (s == 0 and sp.deleted(j)) else sp.version_id_of(k)
                parts.append(f"<NextKeyMarker>{k}</NextKeyMarker><NextVersionIdMarker>{vid}</NextVersionIdMarker>")
            elif cps:
                parts.append(f"<NextKeyMarker>{escape(cps[-1])}</NextKeyMarker>")
        out = []
        for j, s in entries:
            k = key(j)
            if sp.deleted(j) and s == 0:
                out.append(
                    f"<DeleteMarker><Key>{k}</Key><VersionId>{sp.marker_id_of(k)}</VersionId>"
                    f"<IsLatest>true</IsLatest><LastModified>{_LAST_MODIFIED}</LastModified>"
                    f"{_OWNER}</DeleteMarker>"
                )
            else:
                latest = "false" if sp.deleted(j) else "true"
                out.append(
                    f"<Version><Key>{k}</Key><VersionId>{sp.version_id_of(k)}</VersionId>"
                    f"<IsLatest>{latest}</IsLatest><LastModified>{_LAST_MODIFIED}</LastModified>"
                    f"<ETag>&quot;{sp.etag(j, k)}&quot;</ETag><Size>{sp.size(j)}</Size>"
                    f"<StorageClass>STANDARD</StorageClass>{_OWNER}</Version>"
                )
        parts.append("".join(out))
        for cp in cps:
            parts.append(f"<CommonPrefixes><Prefix>{escape(cp)}</Prefix></CommonPrefixes>")
        parts.append("</ListVersionsResult>")
        return _xml("".join(parts))


class SimulatorThread:
    """A simulator running on its own event loop in a daemon thread."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.sim = Simulator(config)
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="s3sim", daemon=True)

    @property
    def endpoint_url(self) -> str:
        return self.sim.endpoint_url

    @property
    def stats(self) -> _Stats:
        return self.sim.stats

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self.sim.start())
        except BaseException as e:  # pragma: no cover
            self._error = e
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self.sim.stop())
        self._loop.close()

    def start(self) -> SimulatorThread:
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def __enter__(self) -> SimulatorThread:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_simulator(config: SimConfig | None = None, **kw: Any) -> SimulatorThread:
    """Starts a simulator in a background thread; use as a context manager or call ``stop()``."""
    return SimulatorThread(config or SimConfig(**kw)).start()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--objects", type=int, default=1000)
    ap.add_argument("--layout", choices=["nested", "flat"], default="nested")
    ap.add_argument("--versioned", action="store_true")
    ap.add_argument("--delete-every", type=int, default=0)
    ap.add_argument("--filler-max", type=int, default=len(_FILLER), help="filler bytes before the key in a body")
    ap.add_argument(
        "--bucket", action="append", default=[], metavar="NAME=N", help="bucket NAME serves its own N objects"
    )
    ap.add_argument("--latency-ms", type=float, default=0.0)
    ap.add_argument("--concurrency-cap", type=int, default=0)
    ap.add_argument("--slowdown-rate", type=float, default=0.0)
    ap.add_argument("--error500-rate", type=float, default=0.0)
    ap.add_argument("--reset-rate", type=float, default=0.0)
    ap.add_argument("--access-denied-rate", type=float, default=0.0)
    ap.add_argument("--fault-after", type=int, default=0)
    ap.add_argument("--slowdown-above", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--stateful", action="store_true", help="keep what is PUT (bench/s3store.py)")
    a = ap.parse_args(argv)
    buckets = {}
    for spec in a.bucket:
        name, sep, count = spec.partition("=")
        if not sep or not name or not count.isdigit():
            ap.error(f"--bucket takes NAME=N, not {spec!r}")
        buckets[name] = int(count)
    cfg = SimConfig(
        objects=a.objects,
        layout=a.layout,
        versioned=a.versioned,
        delete_every=a.delete_every,
        filler_max=a.filler_max,
        buckets=buckets,
        latency_ms=a.latency_ms,
        concurrency_cap=a.concurrency_cap,
        slowdown_rate=a.slowdown_rate,
        error500_rate=a.error500_rate,
        reset_rate=a.reset_rate,
        access_denied_rate=a.access_denied_rate,
        fault_after=a.fault_after,
        slowdown_above=a.slowdown_above,
        seed=a.seed,
        host=a.host,
        port=a.port,
        stateful=a.stateful,
    )

    async def run() -> None:
        sim = await Simulator(cfg).start()
        print(sim.endpoint_url, flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await sim.stop()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main(sys.argv[1:])
