"""Signed Azure Blob requests for reference listing (used by ``azure_listing``).

Plain GET/HEAD over aiohttp, signed by ``depot.core.azure_blob`` (Shared Key,
SAS or an Entra ID bearer token), retried with exponential backoff and full
jitter on 429/500/502/503/504, timeouts and dropped connections (Azure's
``ServerBusy`` is a 503). 403 and a missing container are answers, not
faults: they fail at once, naming Azure's error code and the container —
never the credential or a SAS token.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import random
import re
import time
from email.utils import formatdate
from typing import Any

import aiohttp
from yarl import URL

from depot.core.azure_blob import AzureAccess, AzureUriError, BlobAddress
from depot.services.common.errors import InvalidArgument, NotFound, PermissionDenied, Unavailable

__all__ = ["AzureConfig", "AzureHttpClient", "BlobHead"]

_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
_CODE_RE = re.compile(rb"<Code>([^<]*)</Code>")


@dataclasses.dataclass(frozen=True)
class AzureConfig:
    """The server's Azure credentials, one source per account.

    ``connection_strings``: account name → connection string (endpoint and
    key or SAS), from ``AZURE_STORAGE_CONNECTION_STRING`` (its own account)
    and ``DEPOT_AZURE_CONNECTION_STRINGS`` (several, separated by a newline).
    An account with none uses ``azure-identity``'s DefaultAzureCredential
    when that optional package is installed, else anonymous requests.
    """

    connection_strings: dict[str, str] = dataclasses.field(default_factory=dict, repr=False)
    use_identity: bool = True
    page_size: int = 5000  # maxresults per List Blobs page (Azure's cap)
    max_attempts: int = 8
    backoff_base: float = 0.05
    backoff_max: float = 4.0
    timeout: float = 60.0

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> AzureConfig:
        env = dict(os.environ if env is None else env)
        texts = [env.get("AZURE_STORAGE_CONNECTION_STRING", "")]
        texts += env.get("DEPOT_AZURE_CONNECTION_STRINGS", "").splitlines()
        found: dict[str, str] = {}
        for text in texts:
            if text.strip():
                found[AzureAccess.from_connection_string(text).account] = text.strip()
        return cls(found)

    def access(self, account: str) -> AzureAccess:
        text = self.connection_strings.get(account)
        return AzureAccess.from_connection_string(text) if text else AzureAccess(account)


@dataclasses.dataclass(frozen=True)
class BlobHead:
    etag: str
    size: int
    version_id: str
    directory: bool  # an ADLS Gen2 / hdi_isfolder directory stub, not a file


# The last Entra ID token and when it expires (Unix s), shared by every
# listing of this process: getting one runs DefaultAzureCredential's whole
# chain and a token request, once per reference before. Only a token string
# is kept (no credential object, no session), so no event loop owns it.
# Listings that find it stale at the same moment each get a new one: a
# few extra token requests every half hour, not worth a cross-loop lock.
_token_cache: tuple[str, float] = ("", 0.0)
# A cached token is used while it has at least this long left: a listing
# runs to its end on the token it started with (tokens last 60-90 minutes).
_TOKEN_MARGIN_S = 1800.0


async def _bearer_token() -> str:
    """An Entra ID token for Azure Storage, or "" without ``azure-identity`` (the ``azure`` extra)."""
    global _token_cache
    token, expires_on = _token_cache
    if token and expires_on - time.time() > _TOKEN_MARGIN_S:
        return token
    try:
        from azure.identity.aio import DefaultAzureCredential  # type: ignore[import-not-found]
    except ImportError:
        return ""
    async with DefaultAzureCredential() as cred:
        fresh = await cred.get_token("https://storage.azure.com/.default")
    _token_cache = (str(fresh.token), float(fresh.expires_on))
    return _token_cache[0]


class AzureHttpClient:
    """Requests to one container, with the account's credential."""

    def __init__(self, config: AzureConfig, addr: BlobAddress, *, concurrency: int) -> None:
        self.config = config
        self.addr = addr
        self.concurrency = concurrency
        self.requests = 0
        self.retries = 0
        self._session: aiohttp.ClientSession | None = None
        self._access = config.access(addr.account)

    async def __aenter__(self) -> AzureHttpClient:
        if not (self._access.account_key or self._access.sas_token) and self.config.use_identity:
            try:
                bearer = await _bearer_token()
            except Exception as err:  # azure-identity raises its own CredentialUnavailableError tree
                raise PermissionDenied(
                    f"no Azure credential for account {self.addr.account!r}: {type(err).__name__}", field="uri"
                ) from None
            if bearer:
                self._access = dataclasses.replace(self._access, bearer=bearer)
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.concurrency),
            timeout=aiohttp.ClientTimeout(total=self.config.timeout),
            # HTTPS_PROXY / NO_PROXY, as the S3 listing session honours them.
            trust_env=True,
        )
        return self

    async def __aexit__(self, *exc: Any) -> None:
        if self._session is not None:
            await self._session.close()

    def _where(self) -> str:
        return f"container {self.addr.allow_key!r}"

    async def _request(self, method: str, name: str, query: dict[str, str], what: str) -> tuple[int, Any, bytes]:
        """One request, retried on faults; returns (status, headers, body) for any answer but a fault."""
        assert self._session is not None
        url = self._access.url(self.addr.container, name, query)
        attempt = 0
        while True:
            self.requests += 1
            try:
                headers = self._access.headers(method, url, formatdate(usegmt=True))
            except AzureUriError as err:
                raise InvalidArgument(str(err), field="uri") from None
            rh: Any = {}
            try:
                async with self._session.request(method, URL(url, encoded=True), headers=headers) as resp:
                    body = await resp.read()
                    status, rh = resp.status, resp.headers
            except (TimeoutError, aiohttp.ClientError) as err:
                status, body, fault = 0, b"", type(err).__name__
            else:
                fault = ""
            if status and status not in _RETRY_STATUS:
                return status, rh, body
            attempt += 1
            code = fault or _code(body, rh) or f"HTTP {status}"
            if attempt >= self.config.max_attempts:
                raise Unavailable(f"Azure kept failing {what} in {self._where()}: {code} after {attempt} attempts")
            self.retries += 1
            await asyncio.sleep(random.uniform(0, min(self.config.backoff_max, self.config.backoff_base * 2**attempt)))

    def _answer_error(self, status: int, rh: Any, body: bytes, what: str) -> Exception:
        code = _code(body, rh) or f"HTTP {status}"
        if status == 403:
            return PermissionDenied(
                f"Azure refused {what} in {self._where()} ({code}): the server's credential for account "
                f"{self.addr.account!r} may not read it",
                field="uri",
            )
        if status == 404:
            return NotFound(f"Azure {self._where()}: {code}", field="uri")
        return Unavailable(f"Azure answered {what} in {self._where()} with {code}")

    async def head_blob(self, name: str, version_id: str) -> BlobHead | None:
        """The blob's properties, or None when there is no such blob (or version)."""
        query = {"versionid": version_id} if version_id else {}
        status, rh, body = await self._request("HEAD", name, query, "reading a blob's properties")
        if status == 404:
            # A HEAD has no body: the container's absence shows in a header.
            if rh.get("x-ms-error-code") == "ContainerNotFound":
                raise self._answer_error(status, rh, body, "reading a blob's properties")
            return None
        if status != 200:
            raise self._answer_error(status, rh, body, "reading a blob's properties")
        return BlobHead(
            etag=rh.get("ETag", "").strip('"'),
            size=int(rh.get("Content-Length", "0")),
            version_id=rh.get("x-ms-version-id", ""),
            directory=rh.get("x-ms-meta-hdi_isfolder", "") == "true",
        )

    async def list_page(self, prefix: str, marker: str, *, delimiter: str = "") -> tuple[Any, bytes]:
        """One List Blobs page (raw body and native ``ListPage``) from ``marker``."""
        from depot.native import S3PageError, parse_list_page

        # Metadata says which blobs are directory stubs (hdi_isfolder), which are not entries.
        query = {
            "restype": "container",
            "comp": "list",
            "include": "metadata",
            "maxresults": str(self.config.page_size),
        }
        if prefix:
            query["prefix"] = prefix
        if marker:
            query["marker"] = marker
        if delimiter:
            query["delimiter"] = delimiter
        status, rh, body = await self._request("GET", "", query, "listing blobs")
        if status != 200:
            raise self._answer_error(status, rh, body, "listing blobs")
        try:
            return parse_list_page(body), body
        except S3PageError as err:
            raise Unavailable(f"Azure sent an unreadable listing page for {self._where()}: {err}") from None


def _code(body: bytes, headers: Any) -> str:
    code = headers.get("x-ms-error-code", "") if headers else ""
    if code:
        return str(code)
    m = _CODE_RE.search(body or b"")
    return m.group(1).decode("utf-8", "replace") if m else ""
