"""http(s) references: building their manifest entries in the SDK, and opening their URLs.

``http_reference_entries`` builds the manifest entry of an ``http(s)://``
reference in the SDK, so the manifest service never fetches a user's URL
(DESIGN.md, no SSRF). A HEAD gives the ETag and size; without an ETag the
body is hashed, so a changed page is a changed digest (W&B records only the
URL and misses the change). ``open_url`` is the one GET/HEAD both this and
the download of an http reference (``_references``) go through.
"""

from __future__ import annotations

import http.client
import urllib.error
import urllib.request
from urllib.parse import unquote, urlsplit

from ._copying import CHUNK
from ._exceptions import CommError, InvalidArgumentError, NotFoundError, PermissionDeniedError
from ._manifest import ManifestEntry, b64
from ._rules import new_hasher

__all__ = ["DEFAULT_TIMEOUT_S", "http_reference_entries", "normalize_etag", "open_url", "redact"]

DEFAULT_TIMEOUT_S = 60.0
_USER_AGENT = "depot-sdk"


def normalize_etag(value: str) -> str:
    """An ETag header as Depot records it: no ``W/`` prefix, no quotes."""
    value = value.strip()
    if value[:2] in ("W/", "w/"):
        value = value[2:]
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        value = value[1:-1]
    return value


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


def redact(uri: str) -> str:
    """The URL for an error message: a query may carry a signature or a token."""
    parts = urlsplit(uri)
    return parts._replace(query="…" if parts.query else "", fragment="").geturl()


def open_url(
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
            raise NotFoundError(f"{redact(uri)}: HTTP {e.code} {e.reason}") from None
        if e.code in (401, 403):
            raise PermissionDeniedError(f"{redact(uri)}: HTTP {e.code} {e.reason}") from None
        raise CommError(f"{redact(uri)}: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
        reason = getattr(e, "reason", None) or e
        raise CommError(f"{redact(uri)}: cannot fetch: {reason}") from None
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
        while chunk := resp.read(CHUNK):
            h.update(chunk)
            size += len(chunk)
    except (OSError, http.client.HTTPException) as e:
        raise CommError(f"{redact(uri)}: download interrupted: {e}") from None
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
    head = open_url(uri, "HEAD", timeout, tolerate=(405, 501))
    if head is not None:
        with head:
            etag = normalize_etag(head.headers.get("ETag") or "")
            length = _content_length(head)
        if etag and length >= 0:
            return [ManifestEntry(path, etag, "etag", length, ref=uri)]
    resp = open_url(uri, "GET", timeout)
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
