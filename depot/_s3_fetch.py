"""Reading S3 objects for reference downloads: one signed GET per object, streamed.

Where the time goes: botocore's ``get_object`` spends 1-3 ms of CPU per call
(request serialization, a dozen event hooks, signing, response parsing),
which caps a download of 100,000 small referenced objects at a few hundred
objects/s per core. Here botocore (the optional ``depot[s3]`` extra) runs
once per fetcher, to resolve what is costly to get right: the credentials
chain (environment, shared files, SSO, container and instance roles,
refreshed when temporary), the region, the endpoint (``AWS_ENDPOINT_URL_S3``
and the config file included) and the CA bundle (``AWS_CA_BUNDLE``). Each
GET is then signed by ``_sigv4`` (botocore's algorithm, tested equal to it)
and sent over a pooled keep-alive ``_http1`` connection (a lean HTTP/1.1 GET:
``http.client``'s header parsing cost more than the signing), the body
streamed into the caller's file and hashers.

Faults, bounded so a dead bucket fails a download quickly and by name:
503 SlowDown / 429, 500/502/504 and dropped connections are retried up to
``max_attempts`` times in all, with full-jitter exponential backoff; a 404
is "missing" (the caller decides, see ``allow_missing_references``); a 403
names the object and S3's code. A body cut short is an error, never retried
here, since the caller's hashers have already seen part of it.

Proxies: ``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``NO_PROXY`` as ``urllib`` reads
them (botocore's own rule), https through a CONNECT tunnel; a proxy's
``user:password@`` becomes ``Proxy-Authorization: Basic``. Only ``http://``
proxies: the connection to the proxy is plaintext, so an ``https://`` one is
refused by name rather than sent its credentials in the clear. Not supported:
botocore's ``proxies_config`` (proxy client certificates), S3 Express
directory buckets, FIPS and dual-stack endpoints chosen by config flags.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import os
import random
import re
import ssl
import threading
import time
import urllib.request
import weakref
from typing import Any, Literal, NamedTuple
from urllib.parse import quote, unquote, urlsplit

from depot.core.hashing import Hasher

from ._copying import CHUNK, Sink, write_body_hashing
from ._exceptions import CommError, DepotError, InvalidArgumentError, PermissionDeniedError
from ._http1 import DEFAULT_REQUEST_TIMEOUT_S, Connection, Response
from ._http_refs import DEFAULT_TIMEOUT_S, normalize_etag
from ._sigv4 import SigningCredentials, sign_get

__all__ = ["S3Fetcher", "S3Object", "default_s3_fetcher", "parse_s3_ref"]

_MISSING_CODES = frozenset({"NoSuchKey", "NoSuchVersion", "NoSuchBucket", "NotFound"})
_THROTTLE_CODES = frozenset(
    {"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequests"}
)
_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
_CODE_RE = re.compile(rb"<Code>([^<]*)</Code>")
_DNS_BUCKET = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
# A region S3 names in x-amz-bucket-region goes into a hostname: nothing else passes.
_REGION = re.compile(r"^[a-z0-9-]{1,64}$")
_BACKOFF_BASE_S = 0.05
_BACKOFF_MAX_S = 2.0
# Temporary credentials are re-read this often (botocore refreshes them
# ahead of expiry; a frozen copy per request would take its lock each time).
_CREDENTIALS_TTL_S = 30.0
_MAX_IDLE = 64  # idle connections kept per host; more threads than this open their own


class S3Object(NamedTuple):
    """What GetObject said about the object it returned."""

    etag: str
    size: int
    version_id: str
    # SSE-KMS and SSE-C objects have ETags that are not the md5 of their bytes.
    opaque_etag: bool = False


class _Resolved(NamedTuple):
    """What botocore resolved once for a fetcher."""

    scheme: str
    netloc: str  # host[:port] of the endpoint
    base_path: str  # the endpoint's path, without a trailing slash
    region: str
    style: str  # "path" or "virtual"
    credentials: Any  # botocore Credentials, or None: unsigned requests
    ssl_context: ssl.SSLContext | None
    proxies: dict[str, str]


def _s3_endpoint_from_env() -> str | None:
    # Same precedence as the manifest service's reference client; botocore
    # itself honours AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL when we pass None.
    return (
        os.environ.get("DEPOT_REFERENCE_S3_ENDPOINT_URL")
        or os.environ.get("DEPOT_S3_ENDPOINT_URL")
        or os.environ.get("AWS_ENDPOINT_URL_S3")
        or None
    )


def parse_s3_ref(ref: str) -> tuple[str, str, str]:
    """(bucket, key, version id) of an ``s3://bucket/key[?versionId=v]`` reference.

    Keys are literal (no percent-decoding), as the manifest service records
    them; only a trailing ``?versionId=`` is special.
    """
    rest = ref[len("s3://") :]
    bucket, _, key = rest.partition("/")
    vid = ""
    head, sep, tail = key.rpartition("?versionId=")
    if sep:
        key, vid = head, tail
    if not bucket or not key:
        raise InvalidArgumentError(f"reference {ref!r} does not name an S3 object", field="ref")
    return bucket, key, vid


class _Attempt(Exception):
    """One failed attempt the retry loop may repeat."""

    def __init__(self, detail: str, *, region: str = "") -> None:
        super().__init__(detail)
        self.detail = detail
        self.region = region  # set when S3 named the bucket's real region


class S3Fetcher:
    """Reads S3 objects for a pool of download threads (thread-safe).

    Args:
        endpoint_url: The S3 endpoint; default ``DEPOT_REFERENCE_S3_ENDPOINT_URL``,
            ``DEPOT_S3_ENDPOINT_URL``, ``AWS_ENDPOINT_URL_S3``, else AWS.
        region_name: Default ``AWS_REGION`` / ``AWS_DEFAULT_REGION``, else us-east-1.
        addressing_style: ``auto`` (path style when an endpoint is given,
            which MinIO and Ceph need), ``path`` or ``virtual``.
        timeout: Seconds a connect or a read may block.
        request_timeout: Seconds one GET may take in all, its body
            included (default an hour), so a server dripping bytes cannot
            hold a download thread forever.
        max_attempts: Tries per object, the first included, for throttles,
            5xx answers and dropped connections.
    """

    def __init__(
        self,
        endpoint_url: str | None = None,
        *,
        region_name: str | None = None,
        addressing_style: Literal["auto", "path", "virtual"] = "auto",
        timeout: float = DEFAULT_TIMEOUT_S,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT_S,
        max_attempts: int = 5,
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
        if not request_timeout > 0:
            raise InvalidArgumentError("request_timeout must be positive", field="request_timeout")
        if max_attempts < 1:
            raise InvalidArgumentError("max_attempts must be at least 1", field="max_attempts")
        self.addressing_style = addressing_style
        self.timeout = timeout
        self.request_timeout = request_timeout
        self.max_attempts = max_attempts
        self._resolved: _Resolved | None = None
        self._lock = threading.Lock()
        self._idle: dict[tuple[str, str], collections.deque[Connection]] = {}
        weakref.finalize(self, _close_idle, self._idle)
        self._frozen: tuple[float, SigningCredentials | None] = (0.0, None)
        # S3 named another region for these buckets (a 301/400 with x-amz-bucket-region).
        self._bucket_regions: dict[str, str] = {}

    # -- once per fetcher ------------------------------------------------------------------

    def _resolve(self, where: str) -> _Resolved:
        if self._resolved is not None:
            return self._resolved
        with self._lock:
            if self._resolved is None:
                try:
                    # Imported here so an install without botocore (the `s3`
                    # extra) still does everything but s3:// downloads.
                    import botocore.session
                    from botocore.config import Config
                except ImportError:
                    raise DepotError(f"{where}: reading s3:// references needs pip install 'depot[s3]'") from None
                style = self.addressing_style
                if style == "auto":
                    style = "path" if self.endpoint_url else "virtual"
                session = botocore.session.get_session()
                # The client is built for its resolution only (endpoint,
                # region); it sends nothing.
                client = session.create_client(
                    "s3",
                    endpoint_url=self.endpoint_url,
                    region_name=self.region_name,
                    config=Config(s3={"addressing_style": style}),
                )
                endpoint = urlsplit(client.meta.endpoint_url)
                ssl_context = None
                if endpoint.scheme == "https":
                    ca_bundle = session.get_config_variable("ca_bundle")
                    ssl_context = ssl.create_default_context(cafile=ca_bundle or None)
                self._resolved = _Resolved(
                    scheme=endpoint.scheme,
                    netloc=endpoint.netloc,
                    base_path=endpoint.path.rstrip("/"),
                    region=client.meta.region_name or self.region_name,
                    style=style,
                    credentials=session.get_credentials(),
                    ssl_context=ssl_context,
                    proxies=urllib.request.getproxies(),
                )
        return self._resolved

    def _credentials(self, r: _Resolved) -> SigningCredentials | None:
        if r.credentials is None:
            return None  # no credentials anywhere: unsigned requests (public buckets)
        at, creds = self._frozen
        now = time.monotonic()
        if creds is None or now - at > _CREDENTIALS_TTL_S:
            f = r.credentials.get_frozen_credentials()
            creds = SigningCredentials(f.access_key, f.secret_key, f.token)
            self._frozen = (now, creds)
        return creds

    # -- one object --------------------------------------------------------------------------

    def get(
        self,
        bucket: str,
        key: str,
        version_id: str,
        out: Sink,
        hashers: list[Hasher] | None = None,
    ) -> S3Object | None:
        """Writes the object (that version, when given) to ``out``; None when it does not exist.

        Raises:
            PermissionDeniedError: S3 refused the credentials.
            CommError: S3 could not be reached, kept failing, or cut the body short.
            DepotError: botocore (the ``s3`` extra) is not installed.
        """
        where = f"s3://{bucket}/{key}" + (f" (version {version_id})" if version_id else "")
        r = self._resolve(where)
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._get_once(r, bucket, key, version_id, out, hashers or [], where)
            except _Attempt as failed:
                if failed.region:
                    self._bucket_regions[bucket] = failed.region
                if attempt >= self.max_attempts:
                    raise CommError(f"{where}: {failed.detail} ({attempt} attempts)") from None
                time.sleep(random.random() * min(_BACKOFF_MAX_S, _BACKOFF_BASE_S * 2**attempt))

    def _target(self, r: _Resolved, bucket: str, key: str, version_id: str) -> tuple[str, str, str, str]:
        """(scheme, host, path, query) of the GET, virtual-hosted or path style."""
        region = self._bucket_regions.get(bucket)
        netloc = r.netloc
        if region and self.endpoint_url is None:
            netloc = f"s3.{region}.amazonaws.com"
        path_key = quote(key, safe="/~")
        # Virtual-hosted names need a DNS-safe bucket, and one without dots over
        # https (a dotted name does not match the wildcard certificate).
        virtual = (
            r.style == "virtual"
            and _DNS_BUCKET.match(bucket) is not None
            and not (r.scheme == "https" and "." in bucket)
        )
        if virtual:
            host, path = f"{bucket}.{netloc}", f"{r.base_path}/{path_key}"
        else:
            host, path = netloc, f"{r.base_path}/{quote(bucket, safe='')}/{path_key}"
        query = f"versionId={quote(version_id, safe='-_.~')}" if version_id else ""
        return r.scheme, _canonical_host(r.scheme, host), path, query

    def _get_once(
        self,
        r: _Resolved,
        bucket: str,
        key: str,
        version_id: str,
        out: Sink,
        hashers: list[Hasher],
        where: str,
    ) -> S3Object | None:
        scheme, host, path, query = self._target(r, bucket, key, version_id)
        region = self._bucket_regions.get(bucket, r.region)
        creds = self._credentials(r)
        headers = sign_get(creds, region, host, path, query) if creds is not None else {}
        headers["User-Agent"] = "depot-sdk"
        target = f"{path}?{query}" if query else path
        conn = self._checkout(r, scheme, host)
        try:
            resp = conn.get(target, headers)
        except OSError as e:
            conn.close()
            raise _Attempt(f"cannot reach S3: {type(e).__name__}: {e}") from None
        try:
            if resp.status == 200:
                return self._stream(resp, out, hashers, where)
            try:
                body = resp.read_all()
            except OSError as e:
                raise _Attempt(f"connection lost: {type(e).__name__}: {e}") from None
        finally:
            # A connection is reused only after its answer was read in full.
            if resp.reusable:
                self._checkin(scheme, host, conn)
            else:
                conn.close()
        self._refuse_unless_missing(resp, body, version_id, where, region, creds is None)
        return None

    def _stream(self, resp: Response, out: Sink, hashers: list[Hasher], where: str) -> S3Object:
        size = write_body_hashing(resp.chunks(CHUNK), out, hashers, where)
        head = resp.headers
        sse = head.get("x-amz-server-side-encryption", "")
        return S3Object(
            etag=normalize_etag(head.get("etag", "")),
            size=size,
            version_id=head.get("x-amz-version-id", ""),
            opaque_etag=sse.startswith("aws:kms") or "x-amz-server-side-encryption-customer-algorithm" in head,
        )

    def _refuse_unless_missing(
        self, resp: Response, body: bytes, version_id: str, where: str, region: str, unsigned: bool
    ) -> None:
        """Returns for a missing object (a 404, a delete marker); raises for anything else."""
        status = resp.status
        m = _CODE_RE.search(body)
        code = m.group(1).decode(errors="replace") if m else ""
        if status == 404 or code in _MISSING_CODES:
            return
        if resp.headers.get("x-amz-delete-marker") == "true":
            return  # the version asked for is a delete marker (405)
        if status == 400 and version_id and code == "InvalidArgument":
            return  # S3 answers a malformed version id so: it names no version
        bucket_region = resp.headers.get("x-amz-bucket-region")
        if status in (301, 307, 400) and bucket_region and bucket_region != region and self.endpoint_url is None:
            if not _REGION.match(bucket_region):
                raise CommError(f"{where}: S3 redirected to a malformed region {bucket_region[:80]!r}")
            raise _Attempt(f"redirected to region {bucket_region}", region=bucket_region)
        if status in _RETRY_STATUS or code in _THROTTLE_CODES:
            raise _Attempt(f"S3 answered HTTP {status} {code or resp.reason}")
        if status == 403:
            hint = "; no AWS credentials were found, the request was unsigned" if unsigned else ""
            raise PermissionDeniedError(f"{where}: access denied by S3 ({code or 'HTTP 403'}){hint}")
        raise CommError(f"{where}: S3 answered HTTP {status} {code or resp.reason}")

    # -- connections: idle keep-alive connections shared by the threads ------------------------

    def _checkout(self, r: _Resolved, scheme: str, host: str) -> Connection:
        # Shared rather than per thread: a download's worker threads come and
        # go, and a connection owned by a dead thread would leak its socket.
        idle = self._idle.get((scheme, host))
        if idle:
            with contextlib.suppress(IndexError):
                return idle.pop()  # deque.pop is atomic: no lock on the hot path
        return self._connect(r, scheme, host)

    def _checkin(self, scheme: str, host: str, conn: Connection) -> None:
        idle = self._idle.setdefault((scheme, host), collections.deque())
        if len(idle) >= _MAX_IDLE:
            conn.close()
        else:
            idle.append(conn)

    def close(self) -> None:
        """Closes the idle connections (a later ``get`` opens new ones)."""
        _close_idle(self._idle)

    def _connect(self, r: _Resolved, scheme: str, host: str) -> Connection:
        hostname = urlsplit(f"//{host}").hostname or host
        proxy = r.proxies.get(scheme)
        if not proxy or urllib.request.proxy_bypass(hostname):
            return Connection(
                scheme, host, timeout=self.timeout, ssl_context=r.ssl_context, request_timeout=self.request_timeout
            )
        p = urlsplit(proxy if "//" in proxy else f"http://{proxy}")
        if p.scheme != "http":
            # The proxy is spoken to in plaintext (its CONNECT, its Basic
            # credentials): an https:// proxy would get them in the clear.
            name = "HTTPS_PROXY" if scheme == "https" else "HTTP_PROXY"
            raise InvalidArgumentError(
                f"{name}: only http:// proxies are supported for s3:// references, not {p.scheme}://",
                field=name,
            )
        auth = {}
        if p.username is not None:
            user_pass = f"{unquote(p.username)}:{unquote(p.password or '')}".encode()
            auth["Proxy-Authorization"] = "Basic " + base64.b64encode(user_pass).decode()
        proxy_host = p.hostname or ""
        if p.port:
            proxy_host = f"{proxy_host}:{p.port}"
        return Connection(
            scheme,
            host,
            timeout=self.timeout,
            ssl_context=r.ssl_context,
            proxy=proxy_host,
            proxy_headers=auth,
            request_timeout=self.request_timeout,
        )


def _close_idle(idle: dict[tuple[str, str], collections.deque[Connection]]) -> None:
    for conns in list(idle.values()):
        while conns:
            with contextlib.suppress(IndexError):
                conns.pop().close()


def _canonical_host(scheme: str, host: str) -> str:
    # The Host header as sent and as SigV4 signs it: lowercase, without the
    # scheme's default port.
    default = ":443" if scheme == "https" else ":80"
    host = host.lower()
    return host[: -len(default)] if host.endswith(default) else host


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
