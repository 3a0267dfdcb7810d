"""The S3 simulator's stateful mode: objects that are PUT are kept, listed, copied and deleted.

``bench/s3sim.py`` serves a synthetic key space, fast but read-only; moto
keeps objects but answers ~40 PUTs/s on the shared development machine,
too slow to build a store of 100,000 objects. This module is what the blob
collector's benchmark needs in between: an in-memory bucket store that
answers the requests a Depot S3 store and its sweep make, and nothing more:

- CreateBucket, HeadBucket;
- PutObject (``x-amz-meta-*`` kept), HeadObject, GetObject, DeleteObject;
- CopyObject (``x-amz-copy-source``; onto itself only with a changed
  metadata directive, as S3 insists: the dedup refresh's touch);
- ListObjectsV2 (prefix, start-after, continuation-token, max-keys; no
  delimiter);
- DeleteObjects (at most 1,000 keys, ``Quiet``; a missing key counts as
  deleted, as on S3).

Listings come from a sorted list of keys kept beside the objects' dict:
a PUT of a new key only queues it (merged in at the next listing), a delete
leaves a tombstone that listings skip (dropped at the next merge), so a
sweep that lists and deletes a million keys never re-sorts per page.

``tests/bench/test_s3store.py`` runs the sweep's own requests against this
and against moto and compares the answers.
"""

from __future__ import annotations

import base64
import bisect
import email.utils
import hashlib
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote
from xml.sax.saxutils import escape

__all__ = ["ObjectStore"]

_NS = "http://s3.amazonaws.com/doc/2006-03-01/"
_XML = {"Content-Type": "application/xml"}
# DeleteObjects takes at most this many keys (S3's limit).
DELETE_MAX = 1000

Response = tuple[int, dict[str, str], bytes]


@dataclass(slots=True)
class _Object:
    body: bytes
    etag: str
    mtime: float
    meta: dict[str, str] | None = None


@dataclass
class _Bucket:
    objects: dict[str, _Object] = field(default_factory=dict)
    # Sorted keys; some may be tombstones (deleted since): listings skip them.
    ordered: list[str] = field(default_factory=list)
    # Keys PUT since the last merge, not yet in ``ordered``.
    added: list[str] = field(default_factory=list)
    tombstones: int = 0

    def sorted_keys(self) -> list[str]:
        if self.added or self.tombstones > len(self.ordered) // 2:
            live = self.objects
            self.ordered = sorted({k for k in self.ordered if k in live}.union(self.added))
            self.added = []
            self.tombstones = 0
        return self.ordered

    def put(self, key: str, obj: _Object) -> None:
        if key not in self.objects:
            self.added.append(key)
        self.objects[key] = obj

    def delete(self, key: str) -> None:
        if self.objects.pop(key, None) is not None:
            self.tombstones += 1


def _xml(body: str) -> bytes:
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + body).encode()


def _error(status: int, code: str, message: str, resource: str = "") -> Response:
    return (
        status,
        dict(_XML),
        _xml(
            f"<Error><Code>{code}</Code><Message>{escape(message)}</Message>"
            f"<Resource>{escape(resource)}</Resource><RequestId>SIMREQ</RequestId></Error>"
        ),
    )


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"


def _decode_aws_chunked(body: bytes) -> bytes:
    """The payload of an ``aws-chunked`` body (``size[;ext]\\r\\n data \\r\\n`` ... ``0\\r\\n`` trailers)."""
    out = bytearray()
    pos = 0
    while True:
        eol = body.index(b"\r\n", pos)
        size = int(body[pos:eol].split(b";", 1)[0], 16)
        if size == 0:
            return bytes(out)
        out += body[eol + 2 : eol + 2 + size]
        pos = eol + 2 + size + 2


class ObjectStore:
    """Buckets held in memory; :meth:`handle` answers one HTTP request (path-style)."""

    def __init__(self) -> None:
        self.buckets: dict[str, _Bucket] = {}
        # Equal bodies are held once (a benchmark's millions of 8-byte blobs).
        self._bodies: dict[bytes, bytes] = {}

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Response:
        path, _, query = target.partition("?")
        q = dict(parse_qsl(query, keep_blank_values=True))
        name, _, key = unquote(path).lstrip("/").partition("/")
        if not name:
            return _error(501, "NotImplemented", "ListBuckets is not simulated")
        if not key:
            return self._bucket_op(method, name, q, body)
        bucket = self.buckets.get(name)
        if bucket is None:
            return _error(404, "NoSuchBucket", "The specified bucket does not exist", name)
        if method == "PUT":
            source = headers.get("x-amz-copy-source")
            if source is not None:
                return self._copy(bucket, name, key, unquote(source), headers)
            return self._put(bucket, key, headers, body)
        if method in ("GET", "HEAD"):
            return self._get(bucket, method, key)
        if method == "DELETE":
            bucket.delete(key)
            return 204, {}, b""
        return _error(501, "NotImplemented", f"{method} on an object is not simulated", key)

    # -- buckets -------------------------------------------------------------------------

    def _bucket_op(self, method: str, name: str, q: dict[str, str], body: bytes) -> Response:
        bucket = self.buckets.get(name)
        if method == "PUT" and not q:
            if bucket is not None:
                return _error(409, "BucketAlreadyOwnedByYou", "Your previous request to create the bucket succeeded")
            self.buckets[name] = _Bucket()
            return 200, {"Location": f"/{name}"}, b""
        if bucket is None:
            return _error(404, "NoSuchBucket", "The specified bucket does not exist", name)
        if method == "HEAD":
            return 200, {}, b""
        if method == "POST" and "delete" in q:
            return self._delete_objects(bucket, body)
        if method == "GET" and q.get("list-type") == "2":
            return self._list_v2(bucket, name, q)
        return _error(501, "NotImplemented", "this bucket operation is not simulated", name)

    def _list_v2(self, bucket: _Bucket, name: str, q: dict[str, str]) -> Response:
        if q.get("delimiter"):
            return _error(501, "NotImplemented", "ListObjectsV2 with a delimiter is not simulated", name)
        prefix = q.get("prefix", "")
        try:
            max_keys = max(0, min(1000, int(q.get("max-keys", "1000"))))
        except ValueError:
            return _error(400, "InvalidArgument", "max-keys is not an integer")
        token = q.get("continuation-token")
        after = base64.urlsafe_b64decode(token.encode()).decode() if token else q.get("start-after", "")
        keys = bucket.sorted_keys()
        i = bisect.bisect_right(keys, after) if after >= prefix else bisect.bisect_left(keys, prefix)
        objects = bucket.objects
        found: list[tuple[str, _Object]] = []
        truncated = False
        while i < len(keys):
            k = keys[i]
            i += 1
            if not k.startswith(prefix):
                break
            obj = objects.get(k)
            if obj is None:
                continue  # a tombstone
            if len(found) == max_keys:
                truncated = True
                break
            found.append((k, obj))
        parts = [
            f'<ListBucketResult xmlns="{_NS}"><Name>{escape(name)}</Name><Prefix>{escape(prefix)}</Prefix>',
            f"<KeyCount>{len(found)}</KeyCount><MaxKeys>{max_keys}</MaxKeys>",
            f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>",
        ]
        if token:
            parts.append(f"<ContinuationToken>{escape(token)}</ContinuationToken>")
        if truncated:
            nxt = base64.urlsafe_b64encode(found[-1][0].encode()).decode()
            parts.append(f"<NextContinuationToken>{nxt}</NextContinuationToken>")
        parts.extend(
            f"<Contents><Key>{escape(k)}</Key><LastModified>{_iso(o.mtime)}</LastModified>"
            f"<ETag>&quot;{o.etag}&quot;</ETag><Size>{len(o.body)}</Size>"
            "<StorageClass>STANDARD</StorageClass></Contents>"
            for k, o in found
        )
        parts.append("</ListBucketResult>")
        return 200, dict(_XML), _xml("".join(parts))

    def _delete_objects(self, bucket: _Bucket, body: bytes) -> Response:
        try:
            root = ET.fromstring(body)
        except ET.ParseError:
            return _error(400, "MalformedXML", "The XML you provided was not well-formed")
        ns = {"s3": _NS} if root.tag.startswith("{") else {}
        pfx = "s3:" if ns else ""
        keys = [el.text or "" for el in root.findall(f"{pfx}Object/{pfx}Key", ns)]
        quiet = (root.findtext(f"{pfx}Quiet", "false", ns) or "").strip().lower() == "true"
        if not keys or len(keys) > DELETE_MAX:
            return _error(400, "MalformedXML", f"a DeleteObjects request names 1 to {DELETE_MAX} keys")
        for k in keys:
            bucket.delete(k)
        parts = [f'<DeleteResult xmlns="{_NS}">']
        if not quiet:
            parts.extend(f"<Deleted><Key>{escape(k)}</Key></Deleted>" for k in keys)
        parts.append("</DeleteResult>")
        return 200, dict(_XML), _xml("".join(parts))

    # -- objects -------------------------------------------------------------------------

    def _put(self, bucket: _Bucket, key: str, headers: dict[str, str], body: bytes) -> Response:
        if "aws-chunked" in headers.get("content-encoding", ""):
            body = _decode_aws_chunked(body)
        body = self._bodies.setdefault(body, body)
        etag = hashlib.md5(body).hexdigest()  # noqa: S324 - S3's ETag, not a security hash
        bucket.put(key, _Object(body, etag, time.time(), _meta(headers)))
        return 200, {"ETag": f'"{etag}"'}, b""

    def _copy(self, bucket: _Bucket, name: str, key: str, source: str, headers: dict[str, str]) -> Response:
        src_name, _, src_key = source.lstrip("/").partition("/")
        src_key = src_key.split("?versionId=", 1)[0]
        src_bucket = self.buckets.get(src_name)
        obj = src_bucket.objects.get(src_key) if src_bucket is not None else None
        if obj is None:
            return _error(404, "NoSuchKey", "The specified key does not exist.", src_key)
        replace = headers.get("x-amz-metadata-directive", "COPY").upper() == "REPLACE"
        if src_name == name and src_key == key and not replace:
            return _error(
                400,
                "InvalidRequest",
                "This copy request is illegal because it is trying to copy an object to itself without"
                " changing the object's metadata, storage class, website redirect location or encryption"
                " attributes.",
            )
        copied = _Object(obj.body, obj.etag, time.time(), _meta(headers) if replace else obj.meta)
        bucket.put(key, copied)
        result = (
            f'<CopyObjectResult xmlns="{_NS}"><LastModified>{_iso(copied.mtime)}</LastModified>'
            f"<ETag>&quot;{copied.etag}&quot;</ETag></CopyObjectResult>"
        )
        return 200, dict(_XML), _xml(result)

    def _get(self, bucket: _Bucket, method: str, key: str) -> Response:
        obj = bucket.objects.get(key)
        if obj is None:
            return _error(404, "NoSuchKey", "The specified key does not exist.", key)
        hdrs = {
            "ETag": f'"{obj.etag}"',
            "Last-Modified": email.utils.formatdate(obj.mtime, usegmt=True),
            "Content-Type": "binary/octet-stream",
            "Content-Length": str(len(obj.body)),
            "Accept-Ranges": "bytes",
        }
        for name, value in (obj.meta or {}).items():
            hdrs[f"x-amz-meta-{name}"] = value
        return 200, hdrs, b"" if method == "HEAD" else obj.body


def _meta(headers: dict[str, str]) -> dict[str, str] | None:
    meta = {k[len("x-amz-meta-") :]: v for k, v in headers.items() if k.startswith("x-amz-meta-")}
    return meta or None
