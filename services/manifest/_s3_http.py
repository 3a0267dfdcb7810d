"""Signed S3 requests for reference listing (private to ``s3_listing``).

aiobotocore supplies credentials (its default chain, or explicit keys),
region and endpoint resolution, and runs HeadObject (a single-object
reference). Listing pages and GetBucketVersioning are sent as plain GETs
over aiohttp, signed with botocore's ``S3SigV4Auth`` and *not* parsed by
botocore: the caller gets the raw body and the native ``ListPage``.

Faults
------
Every request of one reference (listing pages and the one-off calls alike)
goes through one retry policy, because botocore's own (12 attempts, backoff
up to 20 s each) turned a dead bucket into the client's 60 s deadline with
the cause lost:

- *Throttling* (503 SlowDown, 429) is S3 asking for a lower request rate, so
  it lowers the number of requests in flight (AIMD, as TCP does: halve on a
  throttle, at most once per "generation" of requests sent at the old
  limit; grow by one per limit's worth of successes) and backs off. A
  throttled request is retried until it has been throttled for
  ``throttle_budget`` seconds: throttling alone never aborts a listing that
  is making progress.
- *Errors* (500/502/504, resets, refused connections, unparseable bodies)
  are retried with backoff up to ``max_attempts`` in a row per request.
- *A dead bucket*: when no request of the reference has succeeded for
  ``stall_timeout`` seconds (every answer a 5xx, a throttle or a reset), the
  reference fails with :class:`S3Unavailable` naming the last S3 error code
  and the bucket, well inside any client deadline.
- 403 and NoSuchBucket are answers, not faults: they fail at once
  (PermissionDenied / NotFound, naming the S3 code and the bucket), and so
  does a TLS certificate this process does not trust (FailedPrecondition).

Both the botocore client and the listing session go through the standard
HTTP_PROXY / HTTPS_PROXY / NO_PROXY and trust AWS_CA_BUNDLE (or the
profile's ``ca_bundle``), so a listing reaches S3 exactly as botocore does.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import os
import random
import re
import ssl
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import aiohttp
from aiohttp.helpers import get_env_proxy_for_url
from yarl import URL

from depot.services.common.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    S3Unavailable,
    Unavailable,
)

__all__ = ["S3Config", "S3HttpClient", "S3RequestError"]

_RETRY_STATUS = frozenset({500, 502, 503, 504})
_THROTTLE_STATUS = frozenset({429, 503})
_THROTTLE_CODES = frozenset(
    {"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequests"}
)
# A HEAD answer has no body, so botocore's error code is the bare status;
# these are the codes S3 documents for those statuses.
_BODYLESS_CODES = {500: "InternalError", 503: "SlowDown", 403: "AccessDenied", 404: "NoSuchKey"}
_CODE_RE = re.compile(rb"<Code>([^<]*)</Code>")
_MSG_RE = re.compile(rb"<Message>([^<]*)</Message>")
_STATUS_RE = re.compile(rb"<Status>([^<]*)</Status>")
_DNS_BUCKET = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class S3Config:
    """How to reach S3. Unset fields fall back to the aiobotocore session defaults
    (environment, shared config/credentials files, container/instance roles)."""

    endpoint_url: str | None = None
    region: str | None = None
    profile: str | None = None
    addressing_style: str = "auto"  # "auto" | "path" | "virtual"
    aws_access_key_id: str | None = dataclasses.field(default=None, repr=False)
    aws_secret_access_key: str | None = dataclasses.field(default=None, repr=False)
    aws_session_token: str | None = dataclasses.field(default=None, repr=False)
    anonymous: bool = False  # unsigned requests (public buckets)
    verify_tls: bool = True
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    max_attempts: int = 12  # errors in a row per request, including the first (throttles do not count)
    backoff_base: float = 0.05  # seconds; full jitter over base * 2**attempt
    backoff_max: float = 8.0
    # A throttle is retried sooner than an error: the lower concurrency is
    # what slows the request rate down; with a 1 s cap the planner's probe
    # rounds (each as slow as its slowest probe) made a 1M listing under 30%
    # SlowDown take 44 s, with 0.2 s 22 s.
    throttle_backoff_max: float = 0.2
    throttle_budget: float = 120.0  # seconds one request may stay throttled before the reference fails
    # No successful request for this long = the bucket is failing, not slow:
    # fail with the S3 error well before the SDK's 60 s call deadline.
    stall_timeout: float = 10.0
    # The AIMD floor; 0 = a quarter of the concurrency. Halving down to 1
    # made a 1M listing under 30% SlowDown take 75 s (S3 throttles per
    # prefix at thousands of requests/s: a few requests in flight are
    # never the cause, and random throttles kept cutting the limit).
    min_concurrency: int = 0
    page_size: int = 1000  # max-keys per listing page (S3 caps it at 1000)

    def __post_init__(self) -> None:
        if self.addressing_style not in ("auto", "path", "virtual"):
            raise InvalidArgument(f"addressing_style must be auto, path or virtual, not {self.addressing_style!r}")
        if not 1 <= self.page_size <= 1000:
            raise InvalidArgument("page_size must be in [1, 1000]")
        if self.max_attempts < 1:
            raise InvalidArgument("max_attempts must be >= 1")
        if self.stall_timeout <= 0 or self.throttle_budget <= 0:
            raise InvalidArgument("stall_timeout and throttle_budget must be > 0")
        if self.min_concurrency < 0:
            raise InvalidArgument("min_concurrency must be >= 0")


def _tls(config: S3Config, ca_bundle: str | None) -> ssl.SSLContext | bool:
    """aiohttp's ``ssl=``: off, the system's trust store, or the configured CA bundle."""
    if not config.verify_tls:
        return False
    if not ca_bundle:
        return True
    return _ca_context(ca_bundle, _version(ca_bundle))


def _version(path: str) -> tuple[int, int, int]:
    """What changes when the file is replaced or rewritten (``cp -p`` keeps the mtime, not the inode)."""
    try:
        st = os.stat(path)
    except OSError:
        return (-1, -1, -1)  # _ca_context reports the failure
    return (st.st_mtime_ns, st.st_size, st.st_ino)


@functools.lru_cache(maxsize=8)
def _ca_context(ca_bundle: str, version: tuple[int, int, int]) -> ssl.SSLContext:
    """One context per CA bundle (and version of it), shared by every listing:
    loading a bundle is tens of milliseconds of CPU, paid per listing before.
    A context only read by its connections is safe to share."""
    del version  # part of the cache key: a replaced bundle is loaded again
    try:
        return ssl.create_default_context(cafile=ca_bundle)
    except (OSError, ssl.SSLError) as e:
        raise FailedPrecondition(f"CA bundle {ca_bundle} (AWS_CA_BUNDLE) cannot be loaded: {e}") from None


def _env_proxy(url: str) -> tuple[URL | None, aiohttp.BasicAuth | None]:
    """The proxy HTTP(S)_PROXY / NO_PROXY (and ~/.netrc for its password) choose for ``url``.

    What aiohttp's ``trust_env`` does, but once per listing (and region
    redirect) instead of once per request: reading the environment and
    ~/.netrc per page was a tenth of the manifest service's CPU when many
    small references are listed. trust_env is off, so ~/.netrc never adds
    credentials to a request to S3 either; those are signed.
    """
    try:
        return get_env_proxy_for_url(URL(url))
    except LookupError:
        return None, None


def _untrusted(where: str, detail: str) -> FailedPrecondition:
    return FailedPrecondition(
        f"{where}: S3's TLS certificate is not trusted ({detail}); "
        "set AWS_CA_BUNDLE to the CA that signed it (or fix the endpoint)"
    )


class _Answer(Exception):
    """S3's final answer to a signed GET, not retryable: the caller says what it means."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"HTTP {status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class S3RequestError(Exception):
    """One failed listing request (transport error, 5xx, or an unparseable body); retryable."""


class _Limit:
    """An AIMD limit on the requests in flight (S3's answer to SlowDown: fewer, slower requests).

    A throttle halves the limit only when the throttled request was sent
    under the current generation; throttles of requests sent before the last
    cut are the same congestion signal and must not halve it again (TCP cuts
    once per window). Each success adds ``1/limit``: one more request in
    flight per limit's worth of successes.
    """

    def __init__(self, limit: int, floor: int) -> None:
        self.max = limit
        self.floor = min(floor, limit)
        self.limit = float(limit)
        self.lowest = limit
        self.cuts = 0
        self.in_flight = 0
        self.generation = 0
        self._cond = asyncio.Condition()

    async def acquire(self) -> int:
        async with self._cond:
            await self._cond.wait_for(lambda: self.in_flight < int(self.limit))
            self.in_flight += 1
            return self.generation

    async def release(self, generation: int, outcome: str) -> None:
        async with self._cond:
            self.in_flight -= 1
            if outcome == "ok":
                self.limit = min(float(self.max), self.limit + 1.0 / self.limit)
            elif outcome == "throttle" and generation == self.generation:
                self.limit = max(float(self.floor), self.limit / 2.0)
                self.generation += 1
                self.cuts += 1
                self.lowest = min(self.lowest, int(self.limit))
            self._cond.notify_all()


class _Outcome(Exception):
    """One failed attempt, classified for the retry policy."""

    def __init__(self, kind: str, detail: str, code: str) -> None:
        super().__init__(detail)
        self.kind = kind  # "throttle" | "error"
        self.detail = detail
        self.code = code


def _error_code(body: bytes) -> tuple[str, str]:
    m = _CODE_RE.search(body)
    g = _MSG_RE.search(body)
    return (m.group(1).decode(errors="replace") if m else "", g.group(1).decode(errors="replace") if g else "")


# One botocore session per profile and event loop, shared by every listing.
# Creating a session loads botocore's data files again: measured 0.2 s of CPU
# quiet and about 1 s under load, spent *on the event loop* once per listing,
# which starved the gRPC server's accept loop until calls waiting to be
# accepted hit gRPC's 30 s limit and were CANCELLED (bench/ingest.py at 64
# clients). With a shared session a listing's client costs about 10 ms, and
# refreshable credentials (instance roles, web identity) are fetched once
# per session, not once per listing. Static keys from a shared credentials
# file are read once per process, as by any long-lived botocore client:
# rotate them with a restart, or use a refreshing source (a role,
# credential_process). Keyed by loop because a session's refreshable
# credentials hold asyncio locks.
_SESSIONS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str | None, Any]] = weakref.WeakKeyDictionary()


def _session(profile: str | None) -> Any:
    from aiobotocore.session import AioSession

    by_profile = _SESSIONS.setdefault(asyncio.get_running_loop(), {})
    session = by_profile.get(profile)
    if session is None:
        session = by_profile[profile] = AioSession(profile=profile) if profile else AioSession()
    return session


class S3HttpClient:
    """Per-reference connection state: a botocore client, an aiohttp session, a signer.

    The botocore *session* behind the client is shared (``_session``); the
    client, the HTTP connections and the retry state are this listing's own.
    """

    def __init__(self, config: S3Config, bucket: str, *, concurrency: int = 32) -> None:
        self.config = config
        self.bucket = bucket
        self.concurrency = concurrency
        self.requests = 0
        self.retries = 0
        self.throttles = 0
        self.limit = _Limit(concurrency, config.min_concurrency or max(1, concurrency // 4))
        self._last_ok = time.monotonic()
        self._client: Any = None
        self._client_cm: Any = None
        self._http: aiohttp.ClientSession | None = None
        self._creds: Any = None
        self._frozen: Any = None
        self._frozen_at = 0.0
        self.region = ""
        self._base = ""
        self._proxy: URL | None = None
        self._proxy_auth: aiohttp.BasicAuth | None = None

    async def __aenter__(self) -> S3HttpClient:
        from aiobotocore.config import AioConfig
        from botocore import UNSIGNED

        c = self.config
        session = _session(c.profile)
        style = "path" if c.addressing_style == "auto" and c.endpoint_url else c.addressing_style
        cfg_kw: dict[str, Any] = dict(
            connect_timeout=c.connect_timeout,
            read_timeout=c.read_timeout,
            # One attempt: retries are ours (_retrying), bounded by the stall timeout.
            retries={"total_max_attempts": 1, "mode": "standard"},
            s3={"addressing_style": style},
        )
        if c.anonymous:
            cfg_kw["signature_version"] = UNSIGNED
        # verify=None, not True: an explicit True makes botocore ignore
        # AWS_CA_BUNDLE (and a profile's ca_bundle); None reads them.
        kw: dict[str, Any] = dict(
            region_name=c.region,
            endpoint_url=c.endpoint_url,
            config=AioConfig(**cfg_kw),
            verify=None if c.verify_tls else False,
        )
        if c.aws_access_key_id:
            kw.update(
                aws_access_key_id=c.aws_access_key_id,
                aws_secret_access_key=c.aws_secret_access_key,
                aws_session_token=c.aws_session_token,
            )
        self._client_cm = session.create_client("s3", **kw)
        self._client = await self._client_cm.__aenter__()
        try:
            if not c.anonymous:
                if c.aws_access_key_id:
                    from botocore.credentials import Credentials

                    self._frozen = Credentials(
                        c.aws_access_key_id, c.aws_secret_access_key or "", c.aws_session_token
                    ).get_frozen_credentials()
                    self._frozen_at = float("inf")
                else:
                    self._creds = await session.get_credentials()
                    if self._creds is None:
                        raise PermissionDenied("no AWS credentials found for S3 (set them, or use anonymous access)")
            self.region = self._client.meta.region_name or "us-east-1"
            self._set_base(self._client.meta.endpoint_url, style)
            # The listing session must reach S3 the way botocore does:
            # trust_env reads HTTP_PROXY / HTTPS_PROXY / NO_PROXY, and TLS
            # trusts the same CA bundle (AWS_CA_BUNDLE or the profile's).
            self._http = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=self.concurrency + 8, ttl_dns_cache=300, ssl=_tls(c, session.get_config_variable("ca_bundle"))
                ),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=c.connect_timeout, sock_read=c.read_timeout),
                auto_decompress=True,
                trust_env=False,  # the proxy is chosen once, in _set_base
            )
        except BaseException:
            await self._client_cm.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(self, *exc: Any) -> None:
        try:
            if self._http is not None:
                await self._http.close()
        finally:
            await self._client_cm.__aexit__(*exc)

    def _set_base(self, endpoint: str, style: str) -> None:
        parts = urlsplit(endpoint)
        virtual = style == "virtual" or (
            style == "auto"
            and _DNS_BUCKET.match(self.bucket) is not None
            and not (parts.scheme == "https" and "." in self.bucket)
        )
        if virtual:
            self._base = f"{parts.scheme}://{self.bucket}.{parts.netloc}/"
        else:
            self._base = f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}/{quote(self.bucket, safe='')}"
        self._style = style
        self._proxy, self._proxy_auth = _env_proxy(self._base)

    # -- one-off calls through botocore ---------------------------------------------------

    def _map_client_error(self, e: Exception, what: str) -> Exception:
        resp = getattr(e, "response", None) or {}
        code = str(resp.get("Error", {}).get("Code", ""))
        status = resp.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in ("NoSuchBucket",):
            return NotFound(f"s3://{self.bucket}: no such bucket (S3 NoSuchBucket)", field="uri")
        if status == 403 or code in ("AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            if not code or code == "403":
                code = "AccessDenied"
            return PermissionDenied(f"{what}: access to bucket {self.bucket!r} denied by S3 ({code}, HTTP 403)")
        return Unavailable(f"{what}: S3 error {code or status}: {e}")

    # -- the retry policy (see the module docstring) ---------------------------------------

    async def _retrying(self, what: str, attempt_fn: Callable[[], Awaitable[T]]) -> T:
        """``attempt_fn()`` under the AIMD limit, retried until it succeeds or the policy gives up.

        ``attempt_fn`` raises :class:`_Outcome` for a retryable failure; any
        other exception is S3's final answer and propagates at once.
        """
        c = self.config
        errors_in_row = 0
        retry = 0
        throttled_since: float | None = None
        while True:
            generation = await self.limit.acquire()
            self.requests += 1
            outcome = "answer"
            try:
                result = await attempt_fn()
                outcome = "ok"
                self._last_ok = time.monotonic()
                return result
            except _Outcome as o:
                outcome = o.kind
                failure = o
            finally:
                await self.limit.release(generation, outcome)
            now = time.monotonic()
            if failure.kind == "throttle":
                self.throttles += 1
                if throttled_since is None:
                    throttled_since = now
                if now - throttled_since >= c.throttle_budget:
                    raise self._unavailable(what, failure, f"throttled this request for {now - throttled_since:.0f} s")
                cap = c.throttle_backoff_max
            else:
                errors_in_row += 1
                if errors_in_row >= c.max_attempts:
                    raise self._unavailable(what, failure, f"failed this request {errors_in_row} times in a row")
                cap = c.backoff_max
            stalled = now - self._last_ok
            if stalled >= c.stall_timeout:
                raise self._unavailable(what, failure, f"answered no request successfully for {stalled:.1f} s")
            retry += 1
            self.retries += 1
            delay = random.random() * min(cap, c.backoff_base * 2 ** min(retry, 30))
            # Wake up by the stall deadline at the latest, so a dead bucket is reported on time.
            await asyncio.sleep(min(delay, c.stall_timeout - stalled + 0.01))

    def _unavailable(self, what: str, failure: _Outcome, why: str) -> S3Unavailable:
        return S3Unavailable(
            f"{what}: S3 {why} (bucket {self.bucket!r}, last error {failure.code}: {failure.detail}); "
            f"{self.requests} requests, {self.throttles} throttled",
            bucket=self.bucket,
            code=failure.code,
        )

    async def _botocore(self, what: str, call: Callable[[], Awaitable[Any]]) -> Any:
        """A one-off botocore call under the retry policy; S3's final answers raise ``ClientError``."""
        from botocore.exceptions import BotoCoreError, ClientError, SSLError

        async def attempt() -> Any:
            try:
                return await call()
            except ClientError as e:
                resp = e.response
                status = resp.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
                code = str(resp.get("Error", {}).get("Code", ""))
                if not code or code == str(status):
                    code = _BODYLESS_CODES.get(status, str(status))
                detail = f"HTTP {status} {code}: {resp.get('Error', {}).get('Message', '')}"
                if status in _THROTTLE_STATUS or code in _THROTTLE_CODES:
                    raise _Outcome("throttle", detail, code) from None
                if status in _RETRY_STATUS:
                    raise _Outcome("error", detail, code) from None
                raise
            except SSLError as e:
                raise _untrusted(what, str(e)) from None
            except BotoCoreError as e:
                raise _Outcome("error", f"{type(e).__name__}: {e}", type(e).__name__) from None

        return await self._retrying(what, attempt)

    # -- one-off calls through botocore ---------------------------------------------------

    async def head_object(self, key: str, version_id: str | None) -> tuple[str, int, str] | None:
        """(etag, size, version id) of the object, or None when it (or that version) does not exist."""
        from botocore.exceptions import ClientError

        kw: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if version_id is not None:
            kw["VersionId"] = version_id
        what = f"s3://{self.bucket}/{key}"
        try:
            r = await self._botocore(what, lambda: self._client.head_object(**kw))
        except ClientError as e:
            resp = e.response
            status = resp.get("ResponseMetadata", {}).get("HTTPStatusCode")
            code = str(resp.get("Error", {}).get("Code", ""))
            if status in (404, 405) or code in ("404", "NoSuchKey", "NoSuchVersion"):
                return None
            if status == 400 and version_id is not None:
                return None  # a malformed version id names no version
            raise self._map_client_error(e, what) from None
        etag = str(r.get("ETag", "")).strip('"')
        return etag, int(r.get("ContentLength", 0)), str(r.get("VersionId") or "")

    async def bucket_versioned(self) -> bool:
        """Whether listing should use ListObjectVersions (versioning Enabled or Suspended).

        A signed GET on the listing session, not botocore's
        GetBucketVersioning: botocore builds its client's TLS context (the
        CA bundle loaded again) on its first request, tens of milliseconds
        of CPU per listing that a prefix listing otherwise never needs.
        """
        what = f"s3://{self.bucket}"
        try:
            body = await self._signed_get([("versioning", "")], what, lambda b: b)
        except _Answer as a:
            if a.status == 404 and a.code == "NoSuchBucket":
                raise NotFound(f"{what}: no such bucket (S3 NoSuchBucket)", field="uri") from None
            if a.status == 403:
                # May list but not read the versioning state: record no version ids.
                return False
            raise Unavailable(f"{what}: S3 error {a.code or a.status}: {a.message}") from None
        m = _STATUS_RE.search(body)
        return m is not None and m.group(1) in (b"Enabled", b"Suspended")

    # -- listing pages ---------------------------------------------------------------------

    async def _credentials(self) -> Any:
        if self.config.anonymous:
            return None
        now = time.monotonic()
        if self._frozen is None or now - self._frozen_at > 60.0:
            self._frozen = await self._creds.get_frozen_credentials()
            self._frozen_at = now
        return self._frozen

    def _sign(self, url: str, creds: Any) -> dict[str, str]:
        if creds is None:
            return {}
        from botocore.auth import S3SigV4Auth
        from botocore.awsrequest import AWSRequest

        req = AWSRequest(method="GET", url=url, headers={})
        S3SigV4Auth(creds, "s3", self.region).add_auth(req)
        return dict(req.headers.items())

    def _url(self, params: list[tuple[str, str]]) -> str:
        q = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(params))
        return f"{self._base}?{q}"

    async def list_page(
        self, prefix: str, *, versioned: bool, after: str = "", vid_marker: str = "", max_keys: int | None = None
    ) -> tuple[Any, bytes]:
        """One ListObjectsV2 (or ListObjectVersions) page of ``prefix`` after ``after``.

        Retried under the policy of the module docstring (the same ``after``:
        a retry resumes from the last listed key); raises domain errors for 4xx.
        """
        from depot.native import S3PageError, parse_list_page

        mk = str(max_keys if max_keys is not None else self.config.page_size)
        if versioned:
            params = [("versions", ""), ("prefix", prefix), ("max-keys", mk), ("encoding-type", "url")]
            if after:
                params.append(("key-marker", after))
                if vid_marker:
                    params.append(("version-id-marker", vid_marker))
        else:
            params = [("list-type", "2"), ("prefix", prefix), ("max-keys", mk), ("encoding-type", "url")]
            if after:
                params.append(("start-after", after))
        where = f"s3://{self.bucket}/{prefix}"

        def parse(body: bytes) -> tuple[Any, bytes]:
            try:
                return parse_list_page(body), body
            except S3PageError as e:
                raise _Outcome("error", f"bad listing page: {e}", "MalformedListing") from None

        try:
            return await self._signed_get(params, where, parse)
        except _Answer as a:
            if a.status == 404 and a.code == "NoSuchBucket":
                raise NotFound(f"s3://{self.bucket}: no such bucket (S3 NoSuchBucket)", field="uri") from None
            if a.status == 403:
                raise PermissionDenied(
                    f"{where}: S3 denied listing bucket {self.bucket!r} ({a.code or a.status}: {a.message})"
                ) from None
            if a.status == 400:
                raise InvalidArgument(
                    f"{where}: S3 rejected the listing ({a.code}: {a.message})", field="uri"
                ) from None
            raise Unavailable(f"{where}: S3 answered HTTP {a.status} {a.code}: {a.message}") from None

    async def _signed_get(self, params: list[tuple[str, str]], where: str, parse: Callable[[bytes], T]) -> T:
        """A signed GET of the bucket with ``params``, under the retry policy; ``parse`` of a 200's body.

        Throttles, 5xx, connection errors and a region redirect are retried
        here (``parse`` may raise :class:`_Outcome` to retry a bad body);
        any other answer raises :class:`_Answer` for the caller to map.
        """
        c = self.config

        async def attempt() -> T:
            url = self._url(params)
            creds = await self._credentials()
            headers = self._sign(url, creds)
            assert self._http is not None
            try:
                async with self._http.get(
                    URL(url, encoded=True), headers=headers, proxy=self._proxy, proxy_auth=self._proxy_auth
                ) as resp:
                    body = await resp.read()
                    status = resp.status
                    bucket_region = resp.headers.get("x-amz-bucket-region")
            except aiohttp.ClientConnectorCertificateError as e:
                # Not transient: retrying cannot make the certificate trusted.
                raise _untrusted(where, str(e.certificate_error)) from None
            except (TimeoutError, aiohttp.ClientError, ConnectionError) as e:
                raise _Outcome("error", f"{type(e).__name__}: {e}", type(e).__name__) from None
            if status == 200:
                return parse(body)
            code, msg = _error_code(body)
            detail = f"HTTP {status} {code}: {msg}"
            if status in _THROTTLE_STATUS or code in _THROTTLE_CODES:
                raise _Outcome("throttle", detail, code or str(status))
            if status in _RETRY_STATUS:
                raise _Outcome("error", detail, code or str(status))
            if status in (301, 307, 400) and bucket_region and bucket_region != self.region and c.endpoint_url is None:
                self.region = bucket_region
                self._set_base(f"https://s3.{bucket_region}.amazonaws.com", self._style)
                raise _Outcome("error", f"redirected to region {bucket_region}", "PermanentRedirect")
            raise _Answer(status, code, msg)

        return await self._retrying(where, attempt)
