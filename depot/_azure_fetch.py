"""Reading Azure blobs for reference downloads: exactly the recorded blob, verified.

One signed GET per blob (``depot.core.azure_blob`` signs: Shared Key, SAS or
an Entra ID bearer token), its body streamed into the caller's file and
hashers. Which bytes: the recorded version when the entry has a version id
(``?versionid=``), and always ``If-Match`` the recorded ETag, so a blob
overwritten since it was logged is refused (412) rather than downloaded as
something else — W&B falls back to a version listing there; an account that
keeps versions has the version id recorded instead. Azure sends the blob's
Content-MD5 with every whole-blob GET when it has one; the bytes are checked
against it (the ETag ties that header to the recorded blob).

Credentials, found once per fetcher: ``AZURE_STORAGE_CONNECTION_STRING`` (its
account) and ``DEPOT_AZURE_CONNECTION_STRINGS`` (one per line: key or SAS,
and the endpoint, e.g. Azurite's); otherwise, when the optional
``azure-identity`` is installed (``pip install depot[azure]``), its
DefaultAzureCredential (environment, workload identity, managed identity,
Azure CLI); otherwise anonymous (public containers). A credential never
appears in a message.

Faults: 429/500/502/503/504 and dropped connections are retried with
full-jitter backoff up to ``max_attempts``; 404 is "missing" (the caller
decides); 403 names the blob and Azure's error code. A body cut short is an
error, never retried here, since the caller's hashers have already seen it.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import os
import random
import threading
import time
from email.utils import formatdate
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from depot.core.azure_blob import AzureAccess, AzureUriError, BlobAddress
from depot.core.hashing import Hasher

from ._copying import Sink, copy_hashing
from ._exceptions import CommError, DigestMismatchError, InvalidArgumentError, PermissionDeniedError
from ._http_refs import DEFAULT_TIMEOUT_S

__all__ = ["AzureBlob", "AzureFetcher", "default_azure_fetcher"]

_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
_BACKOFF_BASE_S = 0.05
_BACKOFF_MAX_S = 4.0
# A token is refreshed this long before it expires.
_TOKEN_MARGIN_S = 300


class AzureBlob(NamedTuple):
    """What the GET said about the blob it returned."""

    etag: str
    size: int


class AzureFetcher:
    """Fetches blobs with the caller's Azure credentials; safe to share between threads."""

    def __init__(
        self,
        connection_strings: list[str] | None = None,
        *,
        use_identity: bool = True,
        timeout: float = DEFAULT_TIMEOUT_S,
        max_attempts: int = 6,
    ) -> None:
        if connection_strings is None:
            connection_strings = [os.environ.get("AZURE_STORAGE_CONNECTION_STRING", "")]
            connection_strings += os.environ.get("DEPOT_AZURE_CONNECTION_STRINGS", "").splitlines()
        self._access: dict[str, AzureAccess] = {}
        for text in connection_strings:
            if text.strip():
                try:
                    acc = AzureAccess.from_connection_string(text)
                except AzureUriError as err:
                    raise InvalidArgumentError(f"Azure connection string: {err}") from None
                self._access[acc.account] = acc
        self.use_identity = use_identity
        self.timeout = timeout
        self.max_attempts = max_attempts
        self._lock = threading.Lock()
        self._credential: Any = None
        self._token: tuple[str, float] = ("", 0.0)

    def _bearer(self) -> str:
        if not self.use_identity:
            return ""
        with self._lock:
            token, expires = self._token
            if token and expires - time.time() > _TOKEN_MARGIN_S:
                return token
            if self._credential is None:
                try:
                    from azure.identity import DefaultAzureCredential  # type: ignore[import-not-found]
                except ImportError:
                    self.use_identity = False
                    return ""
                self._credential = DefaultAzureCredential()
            try:
                t = self._credential.get_token("https://storage.azure.com/.default")
            except Exception as err:  # azure-identity's CredentialUnavailableError and kin
                raise PermissionDeniedError(f"no Azure credential: {type(err).__name__}") from None
            self._token = (str(t.token), float(t.expires_on))
            return self._token[0]

    def _account(self, account: str) -> AzureAccess:
        acc = self._access.get(account)
        if acc is not None:
            return acc
        return AzureAccess(account, bearer=self._bearer())

    def get(self, addr: BlobAddress, etag: str, version_id: str, out: Sink, hashers: list[Hasher]) -> AzureBlob | None:
        """Writes the blob (that version, that ETag) to ``out``; None when it does not exist.

        Raises:
            DigestMismatchError: the blob changed since its ETag was recorded,
                or its bytes differ from its Content-MD5.
            PermissionDeniedError: Azure refused the credentials.
            CommError: Azure could not be reached, kept failing, or cut the body short.
        """
        where = addr.ref(addr.name) + (f" (version {version_id})" if version_id else "")
        acc = self._account(addr.account)
        url = acc.url(addr.container, addr.name, {"versionid": version_id} if version_id else None)
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._get_once(acc, url, etag, out, hashers, where)
            except _Retry as failed:
                if attempt >= self.max_attempts:
                    raise CommError(f"{where}: {failed} ({attempt} attempts)") from None
                time.sleep(random.random() * min(_BACKOFF_MAX_S, _BACKOFF_BASE_S * 2**attempt))

    def _status(self, acc: AzureAccess, url: str, method: str) -> int:
        """The status of one unconditional request (a probe; the body is discarded)."""
        headers = acc.headers(method, url, formatdate(usegmt=True))
        parts = urlsplit(url)
        conn = self._connect(parts.scheme, parts.hostname or "", parts.port)
        try:
            conn.request(method, parts.path + (f"?{parts.query}" if parts.query else ""), headers=headers)
            resp = conn.getresponse()
            resp.read()
            return resp.status
        except (OSError, http.client.HTTPException) as err:
            raise _Retry(type(err).__name__) from None
        finally:
            conn.close()

    def _connect(self, scheme: str, host: str, port: int | None) -> http.client.HTTPConnection:
        if scheme == "https":
            return http.client.HTTPSConnection(host, port, timeout=self.timeout)
        return http.client.HTTPConnection(host, port, timeout=self.timeout)

    def _get_once(
        self, acc: AzureAccess, url: str, etag: str, out: Sink, hashers: list[Hasher], where: str
    ) -> AzureBlob | None:
        extra = {"If-Match": f'"{etag}"'} if etag else {}
        try:
            headers = acc.headers("GET", url, formatdate(usegmt=True), extra)
        except AzureUriError as err:
            raise InvalidArgumentError(f"{where}: {err}") from None
        parts = urlsplit(url)
        conn = self._connect(parts.scheme, parts.hostname or "", parts.port)
        try:
            try:
                conn.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""), headers=headers)
                resp = conn.getresponse()
            except (OSError, http.client.HTTPException) as err:
                raise _Retry(type(err).__name__) from None
            code = resp.getheader("x-ms-error-code") or f"HTTP {resp.status}"
            if resp.status in _RETRY_STATUS:
                resp.read()
                raise _Retry(code)
            if resp.status == 404:
                return None
            if resp.status == 412:
                # HTTP answers If-Match on a missing resource with 412 too (Azurite does).
                if self._status(acc, url, "HEAD") == 404:
                    return None
                raise DigestMismatchError(
                    f"{where} was overwritten after it was recorded: its ETag is no longer {etag}"
                    " (record a version id, from an account that keeps blob versions, to pin it)"
                )
            if resp.status == 403:
                raise PermissionDeniedError(f"{where}: Azure refused the credentials ({code})")
            if resp.status != 200:
                raise CommError(f"{where}: Azure answered {code}")
            md5 = hashlib.md5() if resp.getheader("Content-MD5") else None
            try:
                size = copy_hashing(resp, out, [*hashers, md5] if md5 is not None else hashers)
            except (OSError, http.client.HTTPException) as err:
                raise CommError(f"{where}: download interrupted: {type(err).__name__}") from None
            if md5 is not None and base64.b64encode(md5.digest()).decode() != resp.getheader("Content-MD5"):
                raise DigestMismatchError(f"{where}: the bytes do not match the blob's Content-MD5")
            return AzureBlob((resp.getheader("ETag") or "").strip('"'), size)
        finally:
            conn.close()


class _Retry(Exception):
    """One failed attempt worth retrying (its text names Azure's code or the transport error)."""


_default: tuple[tuple[str, str], AzureFetcher] | None = None
_default_lock = threading.Lock()


def default_azure_fetcher() -> AzureFetcher:
    """The process's fetcher for the credentials the environment names now.

    Rebuilt when those settings change, so a token cache is shared by every
    download that uses the same settings.
    """
    global _default
    env = (os.environ.get("AZURE_STORAGE_CONNECTION_STRING", ""), os.environ.get("DEPOT_AZURE_CONNECTION_STRINGS", ""))
    with _default_lock:
        if _default is None or _default[0] != env:
            _default = (env, AzureFetcher([env[0], *env[1].splitlines()]))
        return _default[1]
