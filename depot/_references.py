"""Downloading a reference entry: exactly the recorded object, verified, through the cache.

``fetch_reference`` downloads the object an entry recorded — exactly that
S3 version when one was recorded — and checks the bytes against the
recorded ETag, size or digest before the caller moves them into place.
``local_copy_matches`` tells a resumed download which files it can keep.

The parts live beside this module, one job each: ``_http_refs`` (http(s)
entries and URLs), ``_s3_fetch`` (signed S3 GETs), ``_reference_cache``
(the local cache of verified downloads). Their public names are
re-exported here for the modules that import them from ``_references``.

The cost of one object, cold: one GET whose body is written to ``dest``
while the content hasher (the entry's algorithm, or md5 for an md5 ETag)
and, when a cache is used, xxh3 see each chunk; then the cache adopts
``dest`` by a hard link (``ReferenceCache.adopt``). A hit is one read of the
cached bytes, copied to ``dest`` through the cache's xxh3 check and the
entry's own content check at once.
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import os
import stat
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlsplit

import xxhash

from depot.core.azure_blob import AzureUriError, is_azure_uri, parse_azure_uri
from depot.core.hashing import ALGORITHMS, Hasher

from ._azure_fetch import AzureFetcher, default_azure_fetcher
from ._copying import CHUNK, Bounded, copy_hashing, open_fresh
from ._exceptions import CommError, DepotError, DigestMismatchError, InvalidArgumentError, NotFoundError
from ._gcs_fetch import GCSFetcher, default_gcs_fetcher, parse_gcs_ref
from ._http_refs import DEFAULT_TIMEOUT_S, http_reference_entries, normalize_etag, open_url, redact
from ._manifest import ManifestEntry, b64
from ._reference_cache import DEFAULT_CACHE_MAX_BYTES, CacheKey, ReferenceCache, default_reference_cache
from ._rules import new_hasher
from ._s3_fetch import S3Fetcher, S3Object, default_s3_fetcher, parse_s3_ref

__all__ = [
    "DEFAULT_CACHE_MAX_BYTES",
    "CacheKey",
    "GCSFetcher",
    "ReferenceCache",
    "S3Fetcher",
    "S3Object",
    "default_gcs_fetcher",
    "default_reference_cache",
    "default_s3_fetcher",
    "fetch_reference",
    "http_reference_entries",
    "local_copy_matches",
    "normalize_etag",
]


@dataclass
class _Check:
    """What to compare once the bytes are written, and the hashers that see them."""

    entry: ManifestEntry
    content: Hasher | None  # the entry's algorithm, or md5 for an md5 ETag; None: not decidable from bytes
    cached: Hasher | None = None  # xxh3-128 for the cache's record (the content hasher when it is xxh3)
    hashers: list[Hasher] = field(default_factory=list)

    @classmethod
    def for_entry(cls, e: ManifestEntry, *, etag_md5: bool = False, for_cache: bool = False) -> _Check:
        content: Hasher | None = None
        if e.algorithm in ALGORITHMS:
            content = new_hasher(e.algorithm)
        elif etag_md5:
            content = hashlib.md5()
        cached: Hasher | None = None
        if for_cache:
            cached = content if e.algorithm == "xxh3_128" else xxhash.xxh3_128()
        check = cls(e, content, cached)
        check.hashers = [h for h in (content, cached) if h is not None]
        if content is not None and content is cached:
            check.hashers = [content]
        return check

    def verify(self, size: int, *, opaque_etag: bool = False) -> None:
        """Raises ``DigestMismatchError`` unless the bytes are the recorded ones."""
        e = self.entry
        if e.algorithm == "none":
            return
        if size != e.size:
            raise DigestMismatchError(f"{e.path}: {e.ref} has {size} bytes, {e.size} were recorded", field=e.path)
        if self.content is None or opaque_etag:
            return
        if e.algorithm in ALGORITHMS:
            got = b64(self.content.digest())
            if got != e.digest:
                raise DigestMismatchError(
                    f"{e.path}: {e.ref} does not match its recorded {e.algorithm} digest {e.digest} (got {got})",
                    field=e.path,
                )
        else:
            got = self.content.digest().hex()
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
    stop: threading.Event | None = None,
    gcs: GCSFetcher | None = None,
) -> bool:
    """Writes the bytes a reference entry recorded to ``dest`` and verifies them.

    ``dest`` is a temp file the caller owns and renames into place once this
    returns True; a new, empty file linked only there is written in place,
    anything else is replaced by a new file, never written through (it may
    share its inode with a cached object). S3 objects are fetched at the
    recorded version id when there is one, so an overwritten key still
    yields the recorded bytes. Verification: size and digest for
    ``xxh3_128``/``md5``; for ``etag``, size plus the md5 of the bytes (a
    single-part ETag) or the ETag the server returns (multipart S3, http);
    nothing for ``none``. Cache hits are verified the same way, plus the
    xxh3 the cache recorded; a hit that fails is evicted and fetched again.
    Safe to call from many threads at once (one ``S3Fetcher`` and one
    ``ReferenceCache`` shared by all).

    Args:
        entry: A reference entry (``entry.ref`` is ``file://``, ``s3://`` or ``http(s)://``).
        dest: Where to write.
        allow_missing: Return False instead of raising when the object is gone.
        cache: A local cache of verified downloads (None: no caching).
        s3: The S3 client for ``s3://`` refs (default: ``default_s3_fetcher()``).
        gcs: The GCS client for ``gs://`` refs (default: ``default_gcs_fetcher()``);
            the recorded generation is fetched, never a newer one.
        timeout: Seconds an HTTP connect or read may block.
        stop: Once set, the transfer ends at its next chunk (a download's
            first error elsewhere).

    Returns:
        True when ``dest`` holds the verified bytes; False when the object is
        missing and ``allow_missing`` is set.

    Raises:
        NotFoundError: The object is missing (and ``allow_missing`` is not set).
        DigestMismatchError: The bytes differ from what was recorded.
        PermissionDeniedError: The store refused the credentials.
        InvalidArgumentError: Not a reference, or a scheme this SDK cannot fetch.
        CommError: The store could not be reached, or kept failing.
    """
    e = entry
    if not e.ref:
        raise InvalidArgumentError(f"{e.path}: not a reference entry", field=e.path)
    dest = Path(dest)
    scheme = urlsplit(e.ref).scheme
    if scheme == "file":
        # Local copies are as cheap as the cache; never cache them.
        return _fetch_file(e, dest, allow_missing, stop)
    if scheme not in ("s3", "gs", "az", "http", "https"):
        raise InvalidArgumentError(
            f"{e.path}: cannot download {scheme}:// references (file, s3, gs, az, http, https)",
            field=e.path,
        )
    # "none" entries were never checksummed, so their bytes may change: never cache.
    key = CacheKey(e.ref, e.version_id, e.digest) if cache is not None and e.algorithm != "none" else None
    etag_md5 = e.algorithm == "etag" and _etag_is_md5(e.digest)
    if cache is not None and key is not None:
        check = _Check.for_entry(e, etag_md5=etag_md5)
        if cache.get(key, dest, check.hashers):
            try:
                check.verify(os.stat(dest).st_size)
                return True
            except DigestMismatchError:
                # The cache's record was rewritten along with its bytes; the
                # entry's own digest caught it.
                cache.discard(key)
    check = _Check.for_entry(e, etag_md5=etag_md5, for_cache=key is not None)
    if scheme == "s3":
        found = _fetch_s3(e, dest, allow_missing, s3 or default_s3_fetcher(), check, stop)
    elif scheme == "gs":
        found = _fetch_gcs(e, dest, allow_missing, gcs or default_gcs_fetcher(), check, stop)
    elif is_azure_uri(e.ref):
        found = _fetch_azure(e, dest, allow_missing, default_azure_fetcher(), check, stop)
    else:
        found = _fetch_http(e, dest, allow_missing, timeout, check, stop)
    if found and cache is not None and key is not None and check.cached is not None:
        try:
            cache.adopt(key, dest, check.cached.digest())
        except OSError:
            pass  # a cache that cannot take the object costs a later fetch, not this one
    return found


def _bounded(e: ManifestEntry, out: BinaryIO, stop: threading.Event | None) -> Bounded:
    # "none" entries promise no size (their bytes may change), so only the stop applies.
    return Bounded(out, None if e.algorithm == "none" else e.size, stop, e.path)


def _open_dest(dest: Path) -> BinaryIO:
    """``dest`` opened for writing, never through a file another path shares.

    A download's temp file (``new_temp_in``) is new, empty and linked
    once: it is written in place. Unlinking and re-creating it, as
    ``open_fresh`` does, cost ~0.4 ms of CPU per object on ext4, a fifth of a
    small object's cold fetch. Anything else at ``dest`` (a file the cache
    shares by hard link, a symlink, a non-empty file, nothing) goes through
    ``open_fresh``: a new inode.
    """
    try:
        fd = os.open(dest, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return open_fresh(dest)
    try:
        st = os.fstat(fd)
        if stat.S_ISREG(st.st_mode) and st.st_nlink == 1 and st.st_size == 0:
            return os.fdopen(fd, "wb")
    except BaseException:
        os.close(fd)
        raise
    os.close(fd)
    return open_fresh(dest)


def _fetch_file(e: ManifestEntry, dest: Path, allow_missing: bool, stop: threading.Event | None) -> bool:
    src = Path(unquote(urlsplit(e.ref).path))
    check = _Check.for_entry(e)
    try:
        with open(src, "rb") as f, _open_dest(dest) as out:
            size = copy_hashing(f, _bounded(e, out, stop), check.hashers)
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
    check.verify(size)
    return True


def _fetch_s3(
    e: ManifestEntry, dest: Path, allow_missing: bool, s3: S3Fetcher, check: _Check, stop: threading.Event | None
) -> bool:
    bucket, key, uri_version = parse_s3_ref(e.ref)
    version_id = e.version_id or uri_version
    with _open_dest(dest) as out:
        got = s3.get(bucket, key, version_id, _bounded(e, out, stop), check.hashers)
    if got is None:
        where = f"s3://{bucket}/{key}" + (f" version {version_id}" if version_id else "")
        return _missing(e, allow_missing, f"{where} does not exist")
    check.verify(got.size, opaque_etag=got.opaque_etag)
    if e.algorithm == "etag" and (check.content is None or got.opaque_etag) and got.etag != e.digest:
        # Multipart (or SSE) ETags are not an md5 of the bytes; S3's word is all we have.
        raise DigestMismatchError(f"{e.path}: {e.ref} has ETag {got.etag}, {e.digest} was recorded", field=e.path)
    return True


def _fetch_gcs(
    e: ManifestEntry, dest: Path, allow_missing: bool, gcs: GCSFetcher, check: _Check, stop: threading.Event | None
) -> bool:
    bucket, key = parse_gcs_ref(e.ref)
    with _open_dest(dest) as out:
        got = gcs.get(bucket, key, e.version_id, _bounded(e, out, stop), check.hashers)
    if got is None:
        where = f"gs://{bucket}/{key}" + (f" generation {e.version_id}" if e.version_id else "")
        return _missing(e, allow_missing, f"{where} does not exist (overwritten or deleted, and not kept)")
    check.verify(got.size)
    if got.gunzipped:
        check.cached = None  # the file is not the bytes hashed, so a cache hit could never be verified
    return True


def _fetch_azure(
    e: ManifestEntry, dest: Path, allow_missing: bool, az: AzureFetcher, check: _Check, stop: threading.Event | None
) -> bool:
    try:
        addr = parse_azure_uri(e.ref)
    except AzureUriError as err:
        raise InvalidArgumentError(f"{e.path}: {err}", field=e.path) from None
    # An Azure ETag is opaque (never an md5): the fetcher sends it as If-Match.
    etag = e.digest if e.algorithm == "etag" else ""
    with _open_dest(dest) as out:
        got = az.get(addr, etag, e.version_id or addr.version_id, _bounded(e, out, stop), check.hashers)
    if got is None:
        return _missing(e, allow_missing, f"{e.ref} does not exist")
    check.verify(got.size)
    return True


def _fetch_http(
    e: ManifestEntry, dest: Path, allow_missing: bool, timeout: float, check: _Check, stop: threading.Event | None
) -> bool:
    resp = open_url(e.ref, "GET", timeout, tolerate=(404, 410))
    if resp is None:
        return _missing(e, allow_missing, f"{redact(e.ref)} answers HTTP 404/410")
    with resp:
        if e.algorithm == "etag":
            etag = normalize_etag(resp.headers.get("ETag") or "")
            if etag != e.digest:
                # Checked before reading: a changed page is not worth downloading.
                raise DigestMismatchError(
                    f"{e.path}: {redact(e.ref)} has ETag {etag or '(none)'}, {e.digest} was recorded",
                    field=e.path,
                )
        try:
            with _open_dest(dest) as out:
                size = copy_hashing(resp, _bounded(e, out, stop), check.hashers)
        except (http.client.HTTPException, ConnectionError, TimeoutError) as err:
            raise CommError(f"{redact(e.ref)}: download interrupted: {err}") from None
    check.verify(size)
    return True


def local_copy_matches(entry: ManifestEntry, path: str | os.PathLike[str], *, dir_fd: int | None = None) -> bool:
    """Whether ``path`` already holds the bytes ``entry`` recorded, so a download can be skipped.

    Decidable from the file alone for content digests (``xxh3_128``, ``md5``)
    and single-part ETags (the md5 of the bytes); False for multipart ETags,
    ``none`` entries and anything unreadable, which are then fetched again.
    ``dir_fd``: ``path`` is relative to that open directory (a download's).
    """
    e = entry
    try:
        if os.stat(path, dir_fd=dir_fd).st_size != e.size:
            return False
        if e.algorithm in ALGORITHMS:
            h = new_hasher(e.algorithm)
        elif e.algorithm == "etag" and _etag_is_md5(e.digest):
            h = hashlib.md5()
        else:
            return False
        with open(path, "rb", opener=lambda p, flags: os.open(p, flags, dir_fd=dir_fd)) as f:
            while chunk := f.read(CHUNK):
                h.update(chunk)
    except OSError:
        return False
    if e.algorithm == "etag":
        return h.digest().hex() == e.digest.lower()
    return b64(h.digest()) == e.digest
