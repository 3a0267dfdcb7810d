"""GCS JSON API requests for reference listing (``gcs_listing`` uses it).

Credentials come from Google's standard chain through ``google-auth``
(``GOOGLE_APPLICATION_CREDENTIALS``, gcloud's application-default file,
the metadata server of GCE/GKE/Cloud Run), scoped read-only; it is the
optional ``depot[gcs]`` extra, imported only when a non-emulator ``gs://``
reference is listed. ``STORAGE_EMULATOR_HOST`` (the variable every Google
client library honours) or ``GCSConfig.endpoint_url`` points at an emulator,
which is then called anonymously.

Requests are plain GETs over aiohttp; pages come back raw and are parsed by
the native ``parse_gcs_page``. The retry policy (AIMD on 429/503, backoff on
500/502/504 and dropped connections, a stall timeout naming the last error)
is the S3 client's, inherited from ``S3HttpClient``: one policy for every
object store a reference can name. 401/403 and a missing bucket are answers,
not faults: they fail at once, naming the bucket.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import time
import weakref
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import aiohttp
from yarl import URL

from depot.services.common.errors import InvalidArgument, NotFound, PermissionDenied, S3Unavailable, Unavailable

from ._s3_http import S3Config, S3HttpClient, _Outcome

__all__ = ["GCSConfig", "GCSHttpClient", "GCSObject", "emulator_endpoint"]

DEFAULT_ENDPOINT = "https://storage.googleapis.com"
_SCOPES = ("https://www.googleapis.com/auth/devstorage.read_only",)
_RETRY_STATUS = frozenset({500, 502, 504})
_THROTTLE_STATUS = frozenset({429, 503})
# Trimmed resources: a page of 1000 full object resources is ~1 MB, of these ~120 KB.
_LIST_FIELDS = "nextPageToken,items(name,size,md5Hash,crc32c,generation)"
_OBJECT_FIELDS = "name,size,md5Hash,crc32c,generation"
# Re-read the token this long before google-auth says it expires.
_TOKEN_MARGIN_S = 60.0


def emulator_endpoint(env: Mapping[str, str] | None = None) -> str | None:
    """``STORAGE_EMULATOR_HOST`` as a base URL (``host:port`` alone means http), or None."""
    host = (os.environ if env is None else env).get("STORAGE_EMULATOR_HOST", "").strip()
    if not host:
        return None
    if "://" not in host:
        host = "http://" + host
    return host.rstrip("/")


@dataclasses.dataclass(frozen=True)
class GCSConfig:
    """How to reach GCS. The retry fields mean what they mean in ``S3Config``."""

    # None: STORAGE_EMULATOR_HOST when set, else the public endpoint.
    endpoint_url: str | None = None
    # None: anonymous exactly when the endpoint is an emulator (not the public one).
    anonymous: bool | None = None
    verify_tls: bool = True
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    max_attempts: int = 12
    backoff_base: float = 0.05
    backoff_max: float = 8.0
    throttle_backoff_max: float = 0.2
    throttle_budget: float = 120.0
    stall_timeout: float = 10.0
    min_concurrency: int = 0
    page_size: int = 1000  # maxResults per page (GCS caps it at 1000)

    def __post_init__(self) -> None:
        self.retry_policy()  # validates the shared fields

    def retry_policy(self) -> S3Config:
        return S3Config(
            max_attempts=self.max_attempts,
            backoff_base=self.backoff_base,
            backoff_max=self.backoff_max,
            throttle_backoff_max=self.throttle_backoff_max,
            throttle_budget=self.throttle_budget,
            stall_timeout=self.stall_timeout,
            min_concurrency=self.min_concurrency,
            page_size=self.page_size,
        )

    def resolved(self) -> tuple[str, bool]:
        """(base URL, anonymous) after the emulator variable and defaults are applied."""
        endpoint = (self.endpoint_url or emulator_endpoint() or DEFAULT_ENDPOINT).rstrip("/")
        anonymous = self.anonymous if self.anonymous is not None else endpoint != DEFAULT_ENDPOINT
        return endpoint, anonymous


@dataclasses.dataclass(frozen=True)
class GCSObject:
    name: str
    size: int
    md5_hash: str  # "" for a composite object
    crc32c: str
    generation: str


def _error(body: bytes) -> tuple[str, str]:
    """(reason, message) of a JSON API error document, best effort."""
    try:
        err = json.loads(body)["error"]
        reasons = err.get("errors") or [{}]
        return str(reasons[0].get("reason", "") or err.get("status", "")), str(err.get("message", ""))
    except (ValueError, KeyError, TypeError, AttributeError, IndexError):
        return "", body[:200].decode("utf-8", "replace")


class _Token:
    """google-auth credentials for the read-only scope, refreshed in a thread before they expire."""

    def __init__(self) -> None:
        try:
            import google.auth
            import google.auth.exceptions
        except ImportError:
            raise Unavailable("gs:// references need google-auth on the server (pip install 'depot[gcs]')") from None
        try:
            creds, _project = google.auth.default(scopes=list(_SCOPES))
        except google.auth.exceptions.DefaultCredentialsError:
            raise PermissionDenied(
                "no Google credentials found for gs:// references "
                "(set GOOGLE_APPLICATION_CREDENTIALS or run on a GCP service account)"
            ) from None
        # google-auth's Credentials (untyped): refresh(), token, valid, expiry.
        self._creds: Any = creds
        self._lock = asyncio.Lock()
        # Set when a refresh failed: the key may be revoked or replaced, so the
        # next listing finds the credentials again instead of reusing these.
        self.failed = False

    async def header(self) -> str:
        c = self._creds
        async with self._lock:
            expiry = getattr(c, "expiry", None)
            stale = expiry is not None and expiry.timestamp() - time.time() < _TOKEN_MARGIN_S
            if self.failed:
                raise PermissionDenied("Google credentials could not be refreshed (see the first listing's error)")
            if not c.valid or stale:
                try:
                    await asyncio.to_thread(self._refresh)
                except PermissionDenied:
                    self.failed = True  # the listings queued on the lock fail at once, not one refresh each
                    raise
        return f"Bearer {c.token}"

    def _refresh(self) -> None:
        import google.auth.exceptions
        import google.auth.transport.requests

        try:
            self._creds.refresh(google.auth.transport.requests.Request())
        except google.auth.exceptions.RefreshError as e:
            # The message is google-auth's, which names the failing step, never the secret.
            raise PermissionDenied(f"Google credentials could not be refreshed: {e}") from None


# One token source per event loop, shared by every listing: the token a
# listing fetched (an OAuth exchange, or a metadata-server request) serves
# the next ones until it nears expiry, instead of one exchange per
# reference. Keyed by loop because the refresh lock is an asyncio lock.
_TOKENS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Token] = weakref.WeakKeyDictionary()


async def _shared_token() -> _Token:
    loop = asyncio.get_running_loop()
    token = _TOKENS.get(loop)
    if token is None or token.failed:
        # Found in a thread (google-auth may read files or ask the metadata server); a
        # failure is not kept, so credentials installed later are found on the next listing.
        token = _TOKENS[loop] = await asyncio.to_thread(_Token)
    return token


class GCSHttpClient(S3HttpClient):
    """One bucket's listing and metadata requests under the shared retry policy."""

    def __init__(self, config: GCSConfig, bucket: str, *, concurrency: int = 32) -> None:
        super().__init__(config.retry_policy(), bucket, concurrency=concurrency)
        self.gcs = config
        self.endpoint, self.anonymous = config.resolved()
        self._token: _Token | None = None
        self._bucket_path = f"{self.endpoint}/storage/v1/b/{quote(bucket, safe='')}/o"

    async def __aenter__(self) -> GCSHttpClient:
        c = self.gcs
        if not self.anonymous:
            self._token = await _shared_token()
        self._http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.concurrency + 8, ttl_dns_cache=300, ssl=c.verify_tls),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=c.connect_timeout, sock_read=c.read_timeout),
            auto_decompress=True,
        )
        return self

    async def __aexit__(self, *exc: Any) -> None:
        if self._http is not None:
            await self._http.close()

    def _unavailable(self, what: str, failure: _Outcome, why: str) -> S3Unavailable:
        return S3Unavailable(
            f"{what}: GCS {why} (bucket {self.bucket!r}, last error {failure.code}: {failure.detail}); "
            f"{self.requests} requests, {self.throttles} throttled",
            bucket=self.bucket,
            code=failure.code,
        )

    async def _get(self, url: str, where: str) -> tuple[int, bytes]:
        """One GET under the retry policy: (status, body) of an answer (2xx or a final 4xx)."""
        headers = {"Accept-Encoding": "gzip"}

        async def attempt() -> tuple[int, bytes]:
            if self._token is not None:
                headers["Authorization"] = await self._token.header()
            assert self._http is not None
            try:
                async with self._http.get(URL(url, encoded=True), headers=headers) as resp:
                    body = await resp.read()
                    status = resp.status
            except (TimeoutError, aiohttp.ClientError, ConnectionError) as e:
                raise _Outcome("error", f"{type(e).__name__}: {e}", type(e).__name__) from None
            if status in _THROTTLE_STATUS or status in _RETRY_STATUS:
                reason, msg = _error(body)
                kind = "throttle" if status in _THROTTLE_STATUS else "error"
                raise _Outcome(kind, f"HTTP {status} {reason}: {msg}", reason or str(status))
            return status, body

        return await self._retrying(where, attempt)

    def _refuse(self, status: int, body: bytes, where: str) -> Exception:
        reason, msg = _error(body)
        if status == 404:
            return NotFound(f"gs://{self.bucket}: no such bucket (GCS {reason or 'notFound'})", field="uri")
        if status in (401, 403):
            return PermissionDenied(
                f"{where}: GCS denied access to bucket {self.bucket!r} (HTTP {status} {reason}: {msg})"
            )
        if status == 400:
            return InvalidArgument(f"{where}: GCS rejected the request ({reason}: {msg})", field="uri")
        return Unavailable(f"{where}: GCS answered HTTP {status} {reason}: {msg}")

    async def get_object(self, key: str, generation: str | None) -> GCSObject | None:
        """The object's metadata (that generation when given), or None when it does not exist."""
        url = f"{self._bucket_path}/{quote(key, safe='')}?fields={quote(_OBJECT_FIELDS, safe='')}"
        if generation is not None:
            url += f"&generation={quote(generation, safe='')}"
        where = f"gs://{self.bucket}/{key}"
        status, body = await self._get(url, where)
        if status == 404:
            # A missing object and a missing bucket both answer 404; listing tells them apart.
            return None
        if status != 200:
            raise self._refuse(status, body, where)
        from depot.native import GCSPageError, parse_gcs_page

        try:
            page = parse_gcs_page(b'{"items":[' + body + b"]}")
        except GCSPageError as e:
            raise Unavailable(f"{where}: GCS answered an unreadable object resource: {e}") from None
        return GCSObject(page.key(0), page.size(0), page.md5_hash(0), page.crc32c(0), page.generation(0))

    async def list_page(
        self,
        prefix: str,
        *,
        versioned: bool = False,
        after: str = "",
        vid_marker: str = "",
        max_keys: int | None = None,
    ) -> tuple[Any, bytes]:
        """One ``objects.list`` page of the live objects under ``prefix`` sorting after ``after``.

        Pages resume from a key (``startOffset`` = the key + NUL, the least
        string after it) rather than a page token, so the S3 planner's
        probes and a retried page both name their start the same way.
        """
        from depot.native import GCSPageError, parse_gcs_page

        mk = max_keys if max_keys is not None else self.gcs.page_size
        q = [("prefix", prefix), ("maxResults", str(mk)), ("fields", _LIST_FIELDS)]
        if after:
            q.append(("startOffset", after + "\x00"))
        url = self._bucket_path + "?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in q if v)
        where = f"gs://{self.bucket}/{prefix}"
        status, body = await self._get(url, where)
        if status != 200:
            raise self._refuse(status, body, where)
        try:
            return parse_gcs_page(body), body
        except GCSPageError as e:
            raise Unavailable(f"{where}: unreadable listing page: {e}") from None
