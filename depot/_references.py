"""References on the client side: http(s) entries, and downloading any reference.

Two halves:

- ``http_reference_entries`` builds the manifest entry of an ``http(s)://``
  reference in the SDK, so the manifest service never fetches a user's URL
  (DESIGN.md, no SSRF). A HEAD gives the ETag and size; without an ETag the
  body is hashed, so a changed page is a changed digest (W&B records only the
  URL and misses the change).
- ``fetch_reference`` downloads the object an entry recorded — exactly that
  S3 version when one was recorded — and checks the bytes against the
  recorded ETag, size or digest before the caller moves them into place.
  ``S3Fetcher`` is the thread-safe S3 client it uses and ``ReferenceCache``
  a bounded local cache of verified downloads shared by threads and processes.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import http.client
import os
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal, NamedTuple
from urllib.parse import unquote, urlsplit

import xxhash

from depot.core.hashing import ALGORITHMS, Hasher

from ._exceptions import (
    CommError,
    DepotError,
    DigestMismatchError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
)
from ._manifest import ManifestEntry, b64
from ._rules import new_hasher

__all__ = [
    "DEFAULT_CACHE_MAX_BYTES",
    "CacheKey",
    "ReferenceCache",
    "S3Fetcher",
    "S3Object",
    "default_reference_cache",
    "default_s3_fetcher",
    "fetch_reference",
    "http_reference_entries",
    "local_copy_matches",
]

DEFAULT_CACHE_MAX_BYTES = 10 << 30
DEFAULT_TIMEOUT_S = 60.0
_CHUNK = 1 << 20
_USER_AGENT = "depot-sdk"


def normalize_etag(value: str) -> str:
    """An ETag header as Depot records it: no ``W/`` prefix, no quotes."""
    value = value.strip()
    if value[:2] in ("W/", "w/"):
        value = value[2:]
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        value = value[1:-1]
    return value


def _copy_hashing(src: IO[bytes], out: IO[bytes], hashers: list[Hasher]) -> int:
    n = 0
    while chunk := src.read(_CHUNK):
        out.write(chunk)
        for h in hashers:
            h.update(chunk)
        n += len(chunk)
    return n


# -- http(s) ----------------------------------------------------------------------


def _check_http_url(uri: str) -> None:
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https"):
        raise InvalidArgumentError(f"not an http(s) URL: {uri!r}", field="uri")
    if not parts.hostname:
        raise InvalidArgumentError(f"URL without a host: {uri!r}", field="uri")
    if parts.username is not None or parts.password is not None:
        # The URL is stored in the manifest for everyone who can read it.
        raise InvalidArgumentError(
            "http(s) references must not carry credentials (user:password@) in the URL",
            field="uri",
        )


def _redact(uri: str) -> str:
    parts = urlsplit(uri)
    return parts._replace(query="…" if parts.query else "", fragment="").geturl()


def _open_url(
    uri: str, method: str, timeout: float, *, tolerate: tuple[int, ...] = ()
) -> http.client.HTTPResponse | None:
    """The response, None for a status in ``tolerate``; errors mapped to Depot's."""
    req = urllib.request.Request(uri, method=method, headers={"User-Agent": _USER_AGENT})
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)  # scheme checked above
    except urllib.error.HTTPError as e:
        e.close()
        if e.code in tolerate:
            return None
        if e.code in (404, 410):
            raise NotFoundError(f"{_redact(uri)}: HTTP {e.code} {e.reason}") from None
        if e.code in (401, 403):
            raise PermissionDeniedError(f"{_redact(uri)}: HTTP {e.code} {e.reason}") from None
        raise CommError(f"{_redact(uri)}: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
        reason = getattr(e, "reason", None) or e
        raise CommError(f"{_redact(uri)}: cannot fetch: {reason}") from None
    assert isinstance(resp, http.client.HTTPResponse)
    return resp


def _default_name(uri: str) -> str:
    parts = urlsplit(uri)
    base = unquote(parts.path.rstrip("/").rsplit("/", 1)[-1]) or (parts.hostname or "")
    return base


def _hash_body(resp: http.client.HTTPResponse, algorithm: str, uri: str) -> tuple[str, int]:
    h = new_hasher(algorithm)
    size = 0
    try:
        while chunk := resp.read(_CHUNK):
            h.update(chunk)
            size += len(chunk)
    except (OSError, http.client.HTTPException) as e:
        raise CommError(f"{_redact(uri)}: download interrupted: {e}") from None
    return b64(h.digest()), size


def http_reference_entries(
    uri: str,
    name: str | None,
    checksum: bool,
    max_objects: int,
    hash_algorithm: str,
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> list[ManifestEntry]:
    """Manifest entries of an ``http(s)://`` reference, built here in the SDK.

    Args:
        uri: The URL; ``http`` or ``https``, without credentials.
        name: The entry path (default: the URL's last path segment).
        checksum: False records the URL alone (algorithm ``none``). True sends a
            HEAD: an ETag is recorded with the Content-Length (algorithm
            ``etag``); without one the body is streamed and hashed with
            ``hash_algorithm``, so a change in the content changes the digest.
        max_objects: Checked for sanity only; a URL is one object.
        hash_algorithm: ``xxh3_128`` or ``md5``, used when there is no ETag.
        timeout: Seconds a connect or a read may block.

    Returns:
        One entry (the caller checks its path and adds it).

    Raises:
        InvalidArgumentError: Not http(s), credentials in the URL, bad name.
        NotFoundError: HTTP 404 or 410.
        PermissionDeniedError: HTTP 401 or 403.
        CommError: Any other HTTP error, or the server could not be reached.
    """
    _check_http_url(uri)
    if max_objects < 1:
        raise InvalidArgumentError("max_objects must be at least 1", field="max_objects")
    if checksum:
        new_hasher(hash_algorithm)  # reject a bad algorithm before any I/O
    path = name or _default_name(uri)
    if not path:
        raise InvalidArgumentError(f"cannot derive an entry name from {uri!r}; pass name=", field="name")
    if not checksum:
        return [ManifestEntry(path, uri, "none", 0, ref=uri)]
    # Some servers refuse HEAD (405/501); the GET below then decides.
    head = _open_url(uri, "HEAD", timeout, tolerate=(405, 501))
    if head is not None:
        with head:
            etag = normalize_etag(head.headers.get("ETag") or "")
            length = _content_length(head)
        if etag and length >= 0:
            return [ManifestEntry(path, etag, "etag", length, ref=uri)]
    resp = _open_url(uri, "GET", timeout)
    assert resp is not None
    with resp:
        etag = normalize_etag(resp.headers.get("ETag") or "")
        length = _content_length(resp)
        if etag and length >= 0:
            return [ManifestEntry(path, etag, "etag", length, ref=uri)]
        digest, size = _hash_body(resp, hash_algorithm, uri)
    return [ManifestEntry(path, digest, hash_algorithm, size, ref=uri)]


def _content_length(resp: http.client.HTTPResponse) -> int:
    value = resp.headers.get("Content-Length")
    if value is None or resp.headers.get("Content-Encoding") not in (None, "identity"):
        return -1
    try:
        return int(value)
    except ValueError:
        return -1


# -- S3 -----------------------------------------------------------------------------


class S3Object(NamedTuple):
    """What GetObject said about the object it returned."""

    etag: str
    size: int
    version_id: str
    # SSE-KMS and SSE-C objects have ETags that are not the md5 of their bytes.
    opaque_etag: bool = False


_MISSING_CODES = frozenset({"NoSuchKey", "NoSuchVersion", "NoSuchBucket", "404", "NotFound"})
_DENIED_CODES = frozenset({"AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch"})


def _s3_endpoint_from_env() -> str | None:
    # Same precedence as the manifest service's reference client; botocore
    # itself honours AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL when we pass None.
    return (
        os.environ.get("DEPOT_REFERENCE_S3_ENDPOINT_URL")
        or os.environ.get("DEPOT_S3_ENDPOINT_URL")
        or os.environ.get("AWS_ENDPOINT_URL_S3")
        or None
    )


class S3Fetcher:
    """A synchronous S3 GetObject client shared by a pool of download threads.

    botocore clients are thread-safe once built (sessions are not), so one
    client is built lazily under a lock and then used from every thread.

    Args:
        endpoint_url: The S3 endpoint; default ``DEPOT_REFERENCE_S3_ENDPOINT_URL``,
            ``DEPOT_S3_ENDPOINT_URL``, ``AWS_ENDPOINT_URL_S3``, else AWS.
        region_name: Default ``AWS_REGION`` / ``AWS_DEFAULT_REGION``, else us-east-1.
        addressing_style: ``auto`` (path style when an endpoint is given,
            which MinIO and Ceph need), ``path`` or ``virtual``.
        max_pool_connections: HTTP connections kept for the threads.
    """

    def __init__(
        self,
        endpoint_url: str | None = None,
        *,
        region_name: str | None = None,
        addressing_style: Literal["auto", "path", "virtual"] = "auto",
        max_pool_connections: int = 16,
    ):
        self.endpoint_url = endpoint_url or _s3_endpoint_from_env()
        self.region_name = (
            region_name or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        )
        if addressing_style not in ("auto", "path", "virtual"):
            raise InvalidArgumentError(
                f"addressing_style must be auto, path or virtual, not {addressing_style!r}",
                field="addressing_style",
            )
        self.addressing_style = addressing_style
        self.max_pool_connections = max_pool_connections
        self._client: Any = None
        self._lock = threading.Lock()

    def _s3(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    # Imported here so an install without botocore (the `s3`
                    # extra) still does everything but s3:// downloads.
                    import botocore.session
                    from botocore.config import Config

                    style = self.addressing_style
                    if style == "auto" and self.endpoint_url:
                        style = "path"
                    self._client = botocore.session.get_session().create_client(
                        "s3",
                        endpoint_url=self.endpoint_url,
                        region_name=self.region_name,
                        config=Config(
                            max_pool_connections=self.max_pool_connections,
                            retries={"mode": "standard", "max_attempts": 5},
                            s3={"addressing_style": style},
                        ),
                    )
        return self._client

    def get(
        self,
        bucket: str,
        key: str,
        version_id: str,
        out: IO[bytes],
        hashers: list[Hasher] | None = None,
    ) -> S3Object | None:
        """Writes the object (that version, when given) to ``out``; None when it does not exist.

        Raises:
            PermissionDeniedError: S3 refused the credentials.
            CommError: S3 could not be reached or failed.
            DepotError: botocore (the ``s3`` extra) is not installed.
        """
        try:
            from botocore.exceptions import BotoCoreError, ClientError
        except ImportError:  # the lean install: botocore comes with the `s3` extra
            raise DepotError(f"s3://{bucket}/{key}: reading s3:// references needs pip install 'depot[s3]'") from None

        kw: dict[str, str] = {"Bucket": bucket, "Key": key}
        if version_id:
            kw["VersionId"] = version_id
        where = f"s3://{bucket}/{key}" + (f" (version {version_id})" if version_id else "")
        try:
            resp = self._s3().get_object(**kw)
            body = resp["Body"]
            try:
                size = _copy_hashing(body, out, hashers or [])
            finally:
                body.close()
        except ClientError as e:
            err = e.response.get("Error", {})
            code = str(err.get("Code", ""))
            status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in _MISSING_CODES or status == 404:
                return None
            if version_id and code == "InvalidArgument":
                # S3 answers a malformed/unknown version id with 400 InvalidArgument.
                return None
            if code in _DENIED_CODES or status == 403:
                raise PermissionDeniedError(f"{where}: access denied ({code})") from None
            raise CommError(f"{where}: {code} {err.get('Message', '')}".rstrip()) from None
        except (BotoCoreError, OSError) as e:
            raise CommError(f"{where}: {e}") from None
        if size != resp.get("ContentLength", size):
            raise CommError(f"{where}: connection closed after {size} of {resp['ContentLength']} bytes")
        return S3Object(
            etag=normalize_etag(resp.get("ETag", "")),
            size=size,
            version_id=resp.get("VersionId") or "",
            opaque_etag=bool(
                str(resp.get("ServerSideEncryption", "")).startswith("aws:kms") or resp.get("SSECustomerAlgorithm")
            ),
        )


_default_fetchers: dict[str | None, S3Fetcher] = {}
_default_lock = threading.Lock()


def default_s3_fetcher() -> S3Fetcher:
    """One shared ``S3Fetcher`` per process for the endpoint the environment names."""
    endpoint = _s3_endpoint_from_env()
    with _default_lock:
        fetcher = _default_fetchers.get(endpoint)
        if fetcher is None:
            fetcher = _default_fetchers[endpoint] = S3Fetcher(endpoint)
        return fetcher


def _parse_s3_ref(ref: str) -> tuple[str, str, str]:
    # Keys are literal (no percent-decoding), as the manifest service records
    # them; only a trailing ?versionId= is special.
    rest = ref[len("s3://") :]
    bucket, _, key = rest.partition("/")
    vid = ""
    head, sep, tail = key.rpartition("?versionId=")
    if sep:
        key, vid = head, tail
    if not bucket or not key:
        raise InvalidArgumentError(f"reference {ref!r} does not name an S3 object", field="ref")
    return bucket, key, vid


# -- the cache ------------------------------------------------------------------------


class CacheKey(NamedTuple):
    """What makes a downloaded reference the same bytes: where, which version, which digest."""

    ref: str
    version_id: str
    digest: str

    def file_name(self) -> str:
        raw = "\0".join(self).encode()
        return hashlib.sha256(raw).hexdigest()


_SUM_SUFFIX = ".xxh3"


class ReferenceCache:
    """A bounded local cache of verified reference downloads.

    Files are written to a temp file and ``os.replace``-d into place, so a
    reader never sees a partial object. Beside each object ``put`` stores the
    xxh3-128 of its bytes (``<name>.xxh3``), and ``get`` hashes the object
    again before handing it out: a cached file changed since (disk error, an
    edit through a hard link, anyone writing into the directory) is evicted
    and reported as a miss, never served. A size check alone would pass a
    same-size rewrite. Each ``get`` touches the file's mtime,
    and when the cached total passes ``max_bytes`` the least recently used
    files are evicted (mtime, not atime, which ``noatime`` mounts never
    update). The running total lives in a file updated under an ``flock``, so
    threads and processes sharing the directory keep one bound.

    Args:
        root: The cache directory (created if absent).
        max_bytes: The size bound; an object larger than it is never cached.
        link: Hard-link hits into place instead of copying. Faster, but a
            later in-place edit of the downloaded file would change the
            cached copy too, so it is off by default.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        max_bytes: int = DEFAULT_CACHE_MAX_BYTES,
        *,
        link: bool = False,
    ):
        if max_bytes < 0:
            raise InvalidArgumentError("max_bytes must not be negative", field="max_bytes")
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.link = link
        self._objects = self.root / "objects"
        self._tmp = self.root / "tmp"
        self._objects.mkdir(parents=True, exist_ok=True)
        self._tmp.mkdir(parents=True, exist_ok=True)
        self._lock_path = self.root / "lock"
        self._total_path = self.root / "total"
        self._thread_lock = threading.Lock()

    def _path(self, key: CacheKey) -> Path:
        name = key.file_name()
        return self._objects / name[:2] / name

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with self._thread_lock, open(self._lock_path, "a+b") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)

    def get(self, key: CacheKey, dest: str | os.PathLike[str]) -> bool:
        """Puts the cached bytes of ``key`` at ``dest`` (replacing it); False on a miss.

        The bytes are hashed against the digest ``put`` recorded; an object
        that fails (or has no recorded digest) is evicted and is a miss, and
        ``dest`` is then left empty.
        """
        src = self._path(key)
        dest = Path(dest)
        try:
            want = _sum_path(src).read_bytes()
        except FileNotFoundError:
            if src.exists():
                # No record of its digest (a cache from an older SDK): never trusted.
                self.discard(key)
            return False
        try:
            # Opening first means an eviction racing us unlinks a file we
            # still read in full.
            with open(src, "rb") as f:
                h = xxhash.xxh3_128()
                if self.link:
                    while chunk := f.read(_CHUNK):
                        h.update(chunk)
                    ok = h.digest() == want
                    if ok:
                        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.{threading.get_ident()}.lnk")
                        os.link(src, tmp)
                        os.replace(tmp, dest)
                else:
                    with open(dest, "wb") as out:
                        _copy_hashing(f, out, [h])
                        ok = h.digest() == want
                        if not ok:
                            out.truncate(0)
        except FileNotFoundError:
            return False
        if not ok:
            self.discard(key)
            return False
        _touch(src)
        return True

    def put(self, key: CacheKey, src: str | os.PathLike[str]) -> bool:
        """Copies ``src`` into the cache under ``key``; False when it is larger than the bound.

        The caller vouches for ``src``: put only bytes verified against the entry.
        """
        size = os.stat(src).st_size
        if size > self.max_bytes:
            return False
        fd, tmp_name = tempfile.mkstemp(dir=self._tmp, prefix=".put-")
        sum_tmp = f"{tmp_name}{_SUM_SUFFIX}"
        try:
            h = xxhash.xxh3_128()
            with os.fdopen(fd, "wb") as out, open(src, "rb") as f:
                _copy_hashing(f, out, [h])
            with open(sum_tmp, "wb") as out:
                out.write(h.digest())
            target = self._path(key)
            target.parent.mkdir(exist_ok=True)
            with self._locked():
                try:
                    old = target.stat().st_size
                except FileNotFoundError:
                    old = 0
                total = self._read_total() + size - old
                # Digest first: a reader between the two replaces sees the new
                # digest with the old bytes of the same key (the same bytes).
                os.replace(sum_tmp, _sum_path(target))
                os.replace(tmp_name, target)
                _touch(target)
                if total > self.max_bytes:
                    total = self._evict(keep=target)
                self._write_total(total)
        finally:
            for name in (tmp_name, sum_tmp):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(name)
        return True

    def discard(self, key: CacheKey) -> None:
        """Removes the object of ``key``, if cached."""
        target = self._path(key)
        with self._locked():
            try:
                size = target.stat().st_size
            except FileNotFoundError:
                size = 0
            _unlink_object(target)
            self._write_total(max(self._read_total() - size, 0))

    def total_bytes(self) -> int:
        """The bytes the cache holds now (a fresh scan)."""
        return sum(st.st_size for _, st in self._scan())

    def clear(self) -> None:
        """Removes every cached object."""
        with self._locked():
            for p, _ in self._scan():
                _unlink_object(p)
            self._write_total(0)

    def _scan(self) -> list[tuple[Path, os.stat_result]]:
        out = []
        for sub in self._objects.iterdir():
            try:
                names = list(os.scandir(sub))
            except (NotADirectoryError, FileNotFoundError):
                continue
            for entry in names:
                if entry.name.endswith(_SUM_SUFFIX):
                    continue
                with contextlib.suppress(FileNotFoundError):
                    out.append((Path(entry.path), entry.stat()))
        return out

    def _evict(self, keep: Path) -> int:
        # A fresh scan under the lock also corrects any drift in the total
        # (a process that died between replace and the total update).
        files = self._scan()
        total = sum(st.st_size for _, st in files)
        files.sort(key=lambda f: (f[1].st_mtime_ns, f[0].name))
        for p, st in files:
            if total <= self.max_bytes:
                break
            if p == keep:
                continue
            _unlink_object(p)
            total -= st.st_size
        return total

    def _read_total(self) -> int:
        try:
            return int(self._total_path.read_text())
        except (FileNotFoundError, ValueError):
            return sum(st.st_size for _, st in self._scan())

    def _write_total(self, total: int) -> None:
        tmp = self._total_path.with_name(f"total.{os.getpid()}.{threading.get_ident()}")
        tmp.write_text(str(total))
        os.replace(tmp, self._total_path)


def _sum_path(path: Path) -> Path:
    return path.with_name(path.name + _SUM_SUFFIX)


def _unlink_object(path: Path) -> None:
    for p in (path, _sum_path(path)):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


def _touch(path: Path) -> None:
    # The fine clock: the kernel stamps files from a coarse one (ms steps),
    # which would tie objects used in quick succession.
    now = time.time_ns()
    with contextlib.suppress(OSError):
        os.utime(path, ns=(now, now))


def default_reference_cache() -> ReferenceCache | None:
    """The cache at ``DEPOT_CACHE_DIR`` (default ``~/.cache/depot/references``).

    Bounded by ``DEPOT_CACHE_MAX_BYTES`` (default 10 GiB); ``0`` turns the cache
    off and returns None, as does a directory that cannot be created.
    """
    max_bytes = DEFAULT_CACHE_MAX_BYTES
    raw = os.environ.get("DEPOT_CACHE_MAX_BYTES")
    if raw:
        try:
            max_bytes = int(raw)
        except ValueError:
            raise InvalidArgumentError(
                f"DEPOT_CACHE_MAX_BYTES must be an integer, not {raw!r}",
                field="DEPOT_CACHE_MAX_BYTES",
            ) from None
    if max_bytes <= 0:
        return None
    root = os.environ.get("DEPOT_CACHE_DIR")
    path = Path(root) if root else Path.home() / ".cache" / "depot" / "references"
    try:
        return ReferenceCache(path, max_bytes)
    except OSError:
        return None


# -- downloading ----------------------------------------------------------------------


@dataclass
class _Check:
    """What to compare once the bytes are written."""

    entry: ManifestEntry
    hashers: list[Hasher]

    @classmethod
    def for_entry(cls, e: ManifestEntry, *, etag_md5: bool = False) -> _Check:
        if e.algorithm in ALGORITHMS:
            return cls(e, [new_hasher(e.algorithm)])
        if etag_md5:
            return cls(e, [hashlib.md5()])
        return cls(e, [])

    def content(self, size: int) -> None:
        e = self.entry
        if e.algorithm == "none":
            return
        if size != e.size:
            raise DigestMismatchError(f"{e.path}: {e.ref} has {size} bytes, {e.size} were recorded", field=e.path)
        if e.algorithm in ALGORITHMS:
            got = b64(self.hashers[0].digest())
            if got != e.digest:
                raise DigestMismatchError(
                    f"{e.path}: {e.ref} does not match its recorded {e.algorithm} digest {e.digest} (got {got})",
                    field=e.path,
                )
        elif e.algorithm == "etag" and self.hashers:
            got = self.hashers[0].digest().hex()
            if got != e.digest.lower():
                raise DigestMismatchError(
                    f"{e.path}: {e.ref} content md5 {got} does not match its recorded ETag {e.digest}",
                    field=e.path,
                )


def _etag_is_md5(etag: str) -> bool:
    # A single-part S3 upload without SSE-KMS/C has ETag = hex md5 of the bytes.
    return len(etag) == 32 and all(c in "0123456789abcdefABCDEF" for c in etag)


def _missing(e: ManifestEntry, allow_missing: bool, why: str) -> bool:
    if allow_missing:
        return False
    raise NotFoundError(f"{e.path}: referenced object {why}", field=e.path)


def fetch_reference(
    entry: ManifestEntry,
    dest: str | os.PathLike[str],
    *,
    allow_missing: bool = False,
    cache: ReferenceCache | None = None,
    s3: S3Fetcher | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> bool:
    """Writes the bytes a reference entry recorded to ``dest`` and verifies them.

    ``dest`` is a temp file the caller owns and renames into place once this
    returns True; it is truncated and rewritten here. S3 objects are fetched at
    the recorded version id when there is one, so an overwritten key still
    yields the recorded bytes. Verification: size and digest for
    ``xxh3_128``/``md5``; for ``etag``, size plus the md5 of the bytes (a
    single-part ETag) or the ETag the server returns (multipart S3, http);
    nothing for ``none``. Verified objects go through ``cache`` when given.

    Args:
        entry: A reference entry (``entry.ref`` is ``file://``, ``s3://`` or ``http(s)://``).
        dest: Where to write.
        allow_missing: Return False instead of raising when the object is gone.
        cache: A local cache of verified downloads (None: no caching).
        s3: The S3 client for ``s3://`` refs (default: ``default_s3_fetcher()``).
        timeout: Seconds an HTTP connect or read may block.

    Returns:
        True when ``dest`` holds the verified bytes; False when the object is
        missing and ``allow_missing`` is set.

    Raises:
        NotFoundError: The object is missing (and ``allow_missing`` is not set).
        DigestMismatchError: The bytes differ from what was recorded.
        InvalidArgumentError: Not a reference, or a scheme this SDK cannot fetch.
        CommError: The store could not be reached.
    """
    e = entry
    if not e.ref:
        raise InvalidArgumentError(f"{e.path}: not a reference entry", field=e.path)
    dest = Path(dest)
    scheme = urlsplit(e.ref).scheme
    fetch: Callable[[ManifestEntry, Path, bool], bool]
    if scheme == "file":
        # Local copies are as cheap as the cache; never cache them.
        return _fetch_file(e, dest, allow_missing)
    if scheme == "s3":
        fetch = lambda e, d, m: _fetch_s3(e, d, m, s3 or default_s3_fetcher())
    elif scheme in ("http", "https"):
        fetch = lambda e, d, m: _fetch_http(e, d, m, timeout)
    else:
        raise InvalidArgumentError(
            f"{e.path}: cannot download {scheme}:// references (file, s3, http, https)",
            field=e.path,
        )
    # "none" entries were never checksummed, so their bytes may change: never cache.
    key = CacheKey(e.ref, e.version_id, e.digest) if e.algorithm != "none" else None
    if cache is not None and key is not None and cache.get(key, dest):
        # The cache vouches for the bytes it stored; the entry's own digest,
        # where the bytes decide it, checks what it stored was right.
        if _hit_matches(e, dest):
            return True
        cache.discard(key)
        # A hard-linked hit must not be truncated through the link below.
        dest.unlink()
    if not fetch(e, dest, allow_missing):
        return False
    if cache is not None and key is not None:
        with contextlib.suppress(OSError):
            cache.put(key, dest)
    return True


def _hit_matches(e: ManifestEntry, path: Path) -> bool:
    if os.stat(path).st_size != e.size:
        return False
    if e.algorithm in ALGORITHMS:
        return local_copy_matches(e, path)
    # An ETag may not be the md5 of the bytes (multipart, SSE-KMS, any http
    # server): the xxh3 the cache recorded after the verified fetch decides.
    return True


def _fetch_file(e: ManifestEntry, dest: Path, allow_missing: bool) -> bool:
    src = Path(unquote(urlsplit(e.ref).path))
    check = _Check.for_entry(e)
    try:
        with open(src, "rb") as f, open(dest, "wb") as out:
            size = _copy_hashing(f, out, check.hashers)
    except FileNotFoundError:
        return _missing(e, allow_missing, f"{src} does not exist")
    except IsADirectoryError:
        raise InvalidArgumentError(
            f"{e.path}: {src} is a directory; only file references can be downloaded",
            field=e.path,
        ) from None
    except OSError as err:
        if err.errno == errno.ENOTDIR:
            return _missing(e, allow_missing, f"{src} does not exist")
        raise DepotError(f"{e.path}: cannot read {src}: {err.strerror}", field=e.path) from None
    except ValueError:
        # file:///a%00b: no file can have that name (open() raises ValueError).
        raise InvalidArgumentError(f"{e.path}: {e.ref} is not a local file name", field=e.path) from None
    check.content(size)
    return True


def _fetch_s3(e: ManifestEntry, dest: Path, allow_missing: bool, s3: S3Fetcher) -> bool:
    bucket, key, uri_version = _parse_s3_ref(e.ref)
    version_id = e.version_id or uri_version
    check = _Check.for_entry(e, etag_md5=e.algorithm == "etag" and _etag_is_md5(e.digest))
    with open(dest, "wb") as out:
        got = s3.get(bucket, key, version_id, out, check.hashers)
    if got is None:
        where = f"s3://{bucket}/{key}" + (f" version {version_id}" if version_id else "")
        return _missing(e, allow_missing, f"{where} does not exist")
    if got.opaque_etag:
        check.hashers = []
    check.content(got.size)
    if e.algorithm == "etag" and not check.hashers and got.etag != e.digest:
        # Multipart (or SSE) ETags are not an md5 of the bytes; S3's word is all we have.
        raise DigestMismatchError(f"{e.path}: {e.ref} has ETag {got.etag}, {e.digest} was recorded", field=e.path)
    return True


def _fetch_http(e: ManifestEntry, dest: Path, allow_missing: bool, timeout: float) -> bool:
    resp = _open_url(e.ref, "GET", timeout, tolerate=(404, 410))
    if resp is None:
        return _missing(e, allow_missing, f"{_redact(e.ref)} answers HTTP 404/410")
    with resp:
        if e.algorithm == "etag":
            etag = normalize_etag(resp.headers.get("ETag") or "")
            if etag != e.digest:
                # Checked before reading: a changed page is not worth downloading.
                raise DigestMismatchError(
                    f"{e.path}: {_redact(e.ref)} has ETag {etag or '(none)'}, {e.digest} was recorded",
                    field=e.path,
                )
        check = _Check.for_entry(e)
        try:
            with open(dest, "wb") as out:
                size = _copy_hashing(resp, out, check.hashers)
        except (http.client.HTTPException, ConnectionError, TimeoutError) as err:
            raise CommError(f"{_redact(e.ref)}: download interrupted: {err}") from None
    check.content(size)
    return True


def local_copy_matches(entry: ManifestEntry, path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` already holds the bytes ``entry`` recorded, so a download can be skipped.

    Decidable from the file alone for content digests (``xxh3_128``, ``md5``)
    and single-part ETags (the md5 of the bytes); False for multipart ETags,
    ``none`` entries and anything unreadable, which are then fetched again.
    """
    e = entry
    try:
        if os.stat(path).st_size != e.size:
            return False
        if e.algorithm in ALGORITHMS:
            h = new_hasher(e.algorithm)
        elif e.algorithm == "etag" and _etag_is_md5(e.digest):
            h = hashlib.md5()
        else:
            return False
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
    except OSError:
        return False
    if e.algorithm == "etag":
        return h.digest().hex() == e.digest.lower()
    return b64(h.digest()) == e.digest
