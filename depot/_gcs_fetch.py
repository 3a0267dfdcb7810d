"""Reading GCS objects for reference downloads: one GET per object, at the recorded generation.

A ``gs://`` entry records the object's ``generation``; the GET asks for
exactly that one (``?generation=``), so an object overwritten since it was
logged still yields the logged bytes while the bucket keeps old
generations (object versioning or soft delete); otherwise it answers 404,
which the caller reports as the missing object it is — never the newer
bytes. The caller verifies size and md5 (the entry's digest is GCS's
``md5Hash``) before anything is moved into place.

gzip-encoded objects (uploaded with ``Content-Encoding: gzip``, e.g.
``gsutil cp -Z``): GCS's ``md5Hash`` and ``size`` describe the stored,
compressed bytes, but GCS serves them decompressed ("decompressive
transcoding") unless the request says ``Accept-Encoding: gzip``. Every GET
says it, so GCS sends the stored bytes (``Content-Encoding: gzip``); the
hashers and the size see exactly those, and ``Gunzip`` decodes them into
the file as they stream, the way ``gsutil cp`` writes such an object. The
HTTP client never decodes a body itself (``_http1``). Other encodings GCS
serves as stored, and they are written as stored.

Credentials: Google's standard chain through ``google-auth`` (the optional
``depot[gcs]`` extra), resolved once per fetcher, the token refreshed before
it expires. ``STORAGE_EMULATOR_HOST`` points every request at an emulator,
called anonymously, as Google's own client libraries do.

Faults: 429, 5xx and dropped connections are retried up to ``max_attempts``
times with full-jitter backoff; 404 is "missing"; 401/403 name the object
and GCS's reason. Proxies are not supported here (S3 downloads support
them); a body cut short is an error, never retried here, since the caller's
hashers have already seen part of it.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import random
import threading
import time
import weakref
from typing import Any, NamedTuple
from urllib.parse import quote, urlsplit

from depot.core.hashing import Hasher

from ._copying import CHUNK, Sink, gunzipping, write_body_hashing
from ._exceptions import CommError, DepotError, DigestMismatchError, InvalidArgumentError, PermissionDeniedError
from ._http1 import DEFAULT_REQUEST_TIMEOUT_S, Connection, Response
from ._http_refs import DEFAULT_TIMEOUT_S

__all__ = ["GCSFetcher", "GCSObject", "default_gcs_fetcher", "parse_gcs_ref"]

DEFAULT_ENDPOINT = "https://storage.googleapis.com"
_SCOPES = ["https://www.googleapis.com/auth/devstorage.read_only"]
_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
_BACKOFF_BASE_S = 0.05
_BACKOFF_MAX_S = 2.0
_TOKEN_MARGIN_S = 60.0
_MAX_IDLE = 64
_GZIP = frozenset({"gzip", "x-gzip"})


class GCSObject(NamedTuple):
    size: int  # the stored bytes received (gzip-encoded: compressed), what the listing recorded
    generation: str
    gunzipped: bool = False  # the file holds the stored bytes decoded, not the bytes hashed


def emulator_endpoint() -> str | None:
    host = os.environ.get("STORAGE_EMULATOR_HOST", "").strip()
    if not host:
        return None
    return (host if "://" in host else "http://" + host).rstrip("/")


def parse_gcs_ref(ref: str) -> tuple[str, str]:
    """``gs://bucket/key`` → (bucket, key); the key is taken literally."""
    if not ref.startswith("gs://"):
        raise InvalidArgumentError(f"not a gs:// reference: {ref!r}", field="ref")
    bucket, _, key = ref[5:].partition("/")
    if not bucket or not key:
        raise InvalidArgumentError(f"gs:// reference without a bucket or object name: {ref!r}", field="ref")
    return bucket, key


class _Attempt(Exception):
    """One failed try, retryable."""


class GCSFetcher:
    """Reads GCS objects for a pool of download threads (thread-safe).

    Args:
        endpoint_url: Default ``STORAGE_EMULATOR_HOST`` (then anonymous), else GCS.
        anonymous: Send no credentials (public buckets); default: only to an emulator.
        timeout: Seconds a connect or a read may block.
        request_timeout: Seconds one GET may take in all, its body included.
        max_attempts: Tries per object, the first included.
    """

    def __init__(
        self,
        endpoint_url: str | None = None,
        *,
        anonymous: bool | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT_S,
        max_attempts: int = 5,
    ) -> None:
        self.endpoint_url = (endpoint_url or emulator_endpoint() or DEFAULT_ENDPOINT).rstrip("/")
        self.anonymous = self.endpoint_url != DEFAULT_ENDPOINT if anonymous is None else anonymous
        if max_attempts < 1:
            raise InvalidArgumentError("max_attempts must be at least 1", field="max_attempts")
        parts = urlsplit(self.endpoint_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InvalidArgumentError(f"GCS endpoint must be an http(s) URL, not {self.endpoint_url!r}")
        self._scheme, self._host, self._base = parts.scheme, parts.netloc, parts.path.rstrip("/")
        self.timeout = timeout
        self.request_timeout = request_timeout
        self.max_attempts = max_attempts
        self._lock = threading.Lock()
        self._creds: Any = None
        self._idle: collections.deque[Connection] = collections.deque()
        weakref.finalize(self, _close_idle, self._idle)

    # -- credentials ------------------------------------------------------------------------

    def _authorization(self, where: str) -> dict[str, str]:
        if self.anonymous:
            return {}
        with self._lock:
            if self._creds is None:
                try:
                    import google.auth
                    import google.auth.exceptions
                except ImportError:
                    raise DepotError(f"{where}: reading gs:// references needs pip install 'depot[gcs]'") from None
                try:
                    self._creds, _ = google.auth.default(scopes=_SCOPES)
                except google.auth.exceptions.DefaultCredentialsError:
                    raise PermissionDeniedError(
                        f"{where}: no Google credentials found (set GOOGLE_APPLICATION_CREDENTIALS, "
                        "run gcloud auth application-default login, or run on a GCP service account)"
                    ) from None
            c = self._creds
            expiry = getattr(c, "expiry", None)
            if not c.valid or (expiry is not None and expiry.timestamp() - time.time() < _TOKEN_MARGIN_S):
                import google.auth.exceptions
                import google.auth.transport.requests

                try:
                    c.refresh(google.auth.transport.requests.Request())
                except google.auth.exceptions.RefreshError as e:
                    raise PermissionDeniedError(f"{where}: Google credentials could not be refreshed: {e}") from None
            return {"Authorization": f"Bearer {c.token}"}

    # -- one object ---------------------------------------------------------------------------

    def get(
        self, bucket: str, key: str, generation: str, out: Sink, hashers: list[Hasher] | None = None
    ) -> GCSObject | None:
        """Writes the object (that generation, when given) to ``out``; None when it does not exist.

        Raises:
            PermissionDeniedError: GCS refused the credentials (401/403).
            CommError: GCS could not be reached, kept failing, or cut the body short.
            DepotError: google-auth (the ``gcs`` extra) is not installed.
        """
        where = f"gs://{bucket}/{key}" + (f" (generation {generation})" if generation else "")
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._get_once(bucket, key, generation, out, hashers or [], where)
            except _Attempt as failed:
                if attempt >= self.max_attempts:
                    raise CommError(f"{where}: {failed} ({attempt} attempts)") from None
                time.sleep(random.random() * min(_BACKOFF_MAX_S, _BACKOFF_BASE_S * 2**attempt))

    def _get_once(
        self, bucket: str, key: str, generation: str, out: Sink, hashers: list[Hasher], where: str
    ) -> GCSObject | None:
        target = f"{self._base}/storage/v1/b/{quote(bucket, safe='')}/o/{quote(key, safe='')}?alt=media"
        if generation:
            target += f"&generation={quote(generation, safe='')}"
        # The stored bytes, which md5Hash covers, even for a gzip-encoded object.
        headers = {"User-Agent": "depot-sdk", "Accept-Encoding": "gzip", **self._authorization(where)}
        conn = self._checkout()
        try:
            resp = conn.get(target, headers)
        except OSError as e:
            conn.close()
            raise _Attempt(f"cannot reach GCS: {type(e).__name__}: {e}") from None
        try:
            if resp.status == 200:
                return self._stream(resp, out, hashers, where)
            try:
                body = resp.read_all()
            except OSError as e:
                raise _Attempt(f"connection lost: {type(e).__name__}: {e}") from None
        finally:
            if resp.reusable:
                self._checkin(conn)
            else:
                conn.close()
        self._refuse_unless_missing(resp, body, where)
        return None

    def _stream(self, resp: Response, out: Sink, hashers: list[Hasher], where: str) -> GCSObject:
        generation = resp.headers.get("x-goog-generation", "")
        encoding = resp.headers.get("content-encoding", "").strip().lower()
        if encoding in _GZIP:
            sink, gunzip = gunzipping(out, where)
            size = write_body_hashing(resp.chunks(CHUNK), sink, hashers, where)
            gunzip.finish()
            return GCSObject(size, generation, gunzipped=True)
        if not encoding and resp.headers.get("x-goog-stored-content-encoding", "").strip().lower() in _GZIP:
            # Transcoded although the stored bytes were asked for (something
            # on the way dropped Accept-Encoding): md5Hash cannot match these.
            raise DigestMismatchError(
                f"{where}: stored gzip-encoded, but GCS sent it decompressed; its md5Hash covers the stored bytes"
            )
        return GCSObject(write_body_hashing(resp.chunks(CHUNK), out, hashers, where), generation)

    def _refuse_unless_missing(self, resp: Response, body: bytes, where: str) -> None:
        status = resp.status
        try:
            err = json.loads(body)["error"]
            reason = str((err.get("errors") or [{}])[0].get("reason", "")) or str(err.get("status", ""))
            message = str(err.get("message", ""))
        except (ValueError, KeyError, TypeError, AttributeError, IndexError):
            reason, message = "", ""
        if status == 404:
            return
        if status in _RETRY_STATUS:
            raise _Attempt(f"GCS answered HTTP {status} {reason or resp.reason}")
        if status in (401, 403):
            hint = "; the request was anonymous" if self.anonymous else ""
            raise PermissionDeniedError(f"{where}: access denied by GCS (HTTP {status} {reason}: {message}){hint}")
        raise CommError(f"{where}: GCS answered HTTP {status} {reason or resp.reason}: {message}")

    # -- connections ----------------------------------------------------------------------------

    def _checkout(self) -> Connection:
        with contextlib.suppress(IndexError):
            return self._idle.pop()
        return Connection(self._scheme, self._host, timeout=self.timeout, request_timeout=self.request_timeout)

    def _checkin(self, conn: Connection) -> None:
        if len(self._idle) >= _MAX_IDLE:
            conn.close()
        else:
            self._idle.append(conn)

    def close(self) -> None:
        _close_idle(self._idle)


def _close_idle(idle: collections.deque[Connection]) -> None:
    while idle:
        with contextlib.suppress(IndexError):
            idle.pop().close()


_default_fetchers: dict[str | None, GCSFetcher] = {}
_default_lock = threading.Lock()


def default_gcs_fetcher() -> GCSFetcher:
    """One shared ``GCSFetcher`` per process for the endpoint the environment names."""
    endpoint = emulator_endpoint()
    with _default_lock:
        fetcher = _default_fetchers.get(endpoint)
        if fetcher is None:
            fetcher = _default_fetchers[endpoint] = GCSFetcher(endpoint)
        return fetcher
