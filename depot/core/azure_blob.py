"""Azure Blob addresses and Shared Key signing, shared by the manifest service and the SDK.

Two spellings name a blob or a prefix:

- ``https://<account>.blob.core.windows.net/<container>/<name>`` — what W&B
  records as an Azure reference, kept as the entry's ref so an exported
  manifest is W&B's;
- ``az://<account>/<container>/<name>`` — the same place without a host, for
  an account served elsewhere (Azurite, a sovereign cloud): its endpoint comes
  from the connection string (``BlobEndpoint``) or ``AzureAccess.endpoint``.

Shared Key is small enough to write (a canonical string, one HMAC-SHA256),
so neither side needs the Azure SDK for account keys or SAS tokens; only
Entra ID tokens need ``azure-identity`` (the optional ``depot[azure]``).
Secrets (account keys, SAS tokens) live in ``AzureAccess`` fields hidden from
``repr`` and never reach a URI, a ref or a message: ``redact`` strips a
query string before a URI is shown.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import re
from collections.abc import Mapping
from urllib.parse import parse_qsl, quote, unquote, urlsplit

__all__ = [
    "API_VERSION",
    "AzureAccess",
    "BlobAddress",
    "AzureUriError",
    "is_azure_uri",
    "parse_azure_uri",
    "parse_connection_string",
    "redact",
    "shared_key_authorization",
]

# The REST version every request names: 2021-08-06 lists VersionId and is
# served by Azurite 3.
API_VERSION = "2021-08-06"
_HOST_SUFFIX = ".blob.core.windows.net"
# Azure's rules: accounts 3-24 lowercase letters/digits; containers 3-63
# lowercase letters/digits/hyphens (``$root``, ``$web`` are system containers).
_ACCOUNT = re.compile(r"^[a-z0-9]{3,24}$")
_CONTAINER = re.compile(r"^(\$root|\$web|[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62})$")


class AzureUriError(ValueError):
    """Not an Azure Blob URI Depot can list or fetch (the message never holds a SAS token)."""


@dataclasses.dataclass(frozen=True)
class BlobAddress:
    """One blob or prefix: ``account``/``container``/``name`` (``name`` may be ``""``)."""

    scheme: str  # "https" (W&B's host form) or "az"
    account: str
    container: str
    name: str
    version_id: str = ""

    @property
    def allow_key(self) -> str:
        """How ``DEPOT_REFERENCE_BUCKETS`` names this container: ``<account>/<container>``."""
        return f"{self.account}/{self.container}"

    def ref(self, name: str) -> str:
        """The entry ref of blob ``name`` in this container (no query, never a secret)."""
        if self.scheme == "https":
            return f"https://{self.account}{_HOST_SUFFIX}/{self.container}/{name}"
        return f"az://{self.account}/{self.container}/{name}"

    def ref_prefix(self) -> str:
        return self.ref("")


def redact(uri: str) -> str:
    """``uri`` without its query string (where a SAS token would be)."""
    head, sep, _ = uri.partition("?")
    return head + ("?…" if sep else "")


def is_azure_uri(uri: str) -> bool:
    """Whether ``uri`` is one of the two Azure Blob spellings (not a plain https:// URL)."""
    if uri.startswith("az://"):
        return True
    if not uri.startswith("https://"):
        return False
    host = urlsplit(uri).hostname or ""
    return host.endswith(_HOST_SUFFIX)


def parse_azure_uri(uri: str) -> BlobAddress:
    """``https://<a>.blob.core.windows.net/<c>/<name>`` or ``az://<a>/<c>/<name>`` → address.

    The blob name is taken as written after the container (percent escapes
    are decoded, as W&B's handler does through the Azure SDK). The only query
    parameter kept is ``versionId`` (one version of one blob); any other
    query, such as a SAS token, is refused: references are stored, and a
    credential must not be.

    Raises:
        AzureUriError: not an Azure Blob URI, or a bad account/container name.
    """
    parts = urlsplit(uri)
    if parts.fragment:
        raise AzureUriError(f"{redact(uri)}: Azure blob names cannot hold '#'")
    if parts.scheme == "az":
        account = parts.netloc
        path = parts.path
        scheme = "az"
    elif parts.scheme == "https" and (parts.hostname or "").endswith(_HOST_SUFFIX) and parts.port is None:
        account = (parts.hostname or "")[: -len(_HOST_SUFFIX)]
        path = parts.path
        scheme = "https"
    else:
        raise AzureUriError(f"{redact(uri)}: not an Azure Blob URI (https://<account>{_HOST_SUFFIX}/… or az://…)")
    if not _ACCOUNT.match(account):
        raise AzureUriError(f"{redact(uri)}: {account!r} is not an Azure storage account name")
    container, _, name = path.lstrip("/").partition("/")
    if not _CONTAINER.match(container):
        raise AzureUriError(f"{redact(uri)}: {container!r} is not an Azure container name")
    version_id = ""
    if parts.query:
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        if set(query) != {"versionId"}:
            raise AzureUriError(
                f"{redact(uri)}: a reference URI may carry only ?versionId=…; credentials such as a SAS "
                "token go to the credential settings, never into a stored reference"
            )
        version_id = query["versionId"]
        if not version_id or not name or name.endswith("/"):
            raise AzureUriError(f"{redact(uri)}: versionId pins one blob version and needs a blob name")
    name = unquote(name)
    # HTTP clients resolve "." and ".." segments before sending, so
    # "allowed/../secret/x" would be checked against container "allowed" and
    # fetched from "secret": refuse them (Azure cannot address such names by
    # URL either).
    if any(seg in (".", "..") for seg in name.split("/")):
        raise AzureUriError(f"{redact(uri)}: a blob name cannot hold '.' or '..' path segments")
    return BlobAddress(scheme, account, container, name, version_id)


def parse_connection_string(text: str) -> dict[str, str]:
    """``Key=Value;Key=Value`` → dict (values may hold ``=``, as account keys do)."""
    out: dict[str, str] = {}
    for part in text.split(";"):
        if not part.strip():
            continue
        k, sep, v = part.partition("=")
        if not sep:
            raise AzureUriError("an Azure connection string is Key=Value pairs separated by ';'")
        out[k.strip()] = v.strip()
    return out


@dataclasses.dataclass(frozen=True)
class AzureAccess:
    """How to reach and sign for one storage account's blobs.

    ``endpoint``: the account's blob endpoint (``https://<a>.blob.core.windows.net``
    by default; Azurite's is ``http://127.0.0.1:<port>/<account>``).
    Exactly one credential is used: ``account_key`` (Shared Key), else
    ``sas_token``, else ``bearer`` (an Entra ID token), else none (public
    containers).
    """

    account: str
    endpoint: str = ""
    account_key: str = dataclasses.field(default="", repr=False)
    sas_token: str = dataclasses.field(default="", repr=False)
    bearer: str = dataclasses.field(default="", repr=False)

    @classmethod
    def from_connection_string(cls, text: str) -> AzureAccess:
        f = parse_connection_string(text)
        account = f.get("AccountName", "")
        endpoint = f.get("BlobEndpoint", "")
        if not endpoint and account:
            proto = f.get("DefaultEndpointsProtocol", "https")
            suffix = f.get("EndpointSuffix", "core.windows.net")
            endpoint = f"{proto}://{account}.blob.{suffix}"
        if not account:
            raise AzureUriError("the Azure connection string names no AccountName")
        return cls(account, endpoint.rstrip("/"), f.get("AccountKey", ""), f.get("SharedAccessSignature", ""))

    def base_url(self) -> str:
        return (self.endpoint or f"https://{self.account}{_HOST_SUFFIX}").rstrip("/")

    def url(self, container: str, name: str = "", query: Mapping[str, str] | None = None) -> str:
        """The request URL of a container (``name=""``) or blob, with ``query`` and any SAS token."""
        path = f"/{quote(container, safe='$')}"
        if name:
            path += "/" + quote(name, safe="/~")
        q = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in (query or {}).items())
        if self.sas_token and not self.account_key:
            q = f"{q}&{self.sas_token.lstrip('?')}" if q else self.sas_token.lstrip("?")
        return self.base_url() + path + (f"?{q}" if q else "")

    def headers(self, method: str, url: str, date: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """Request headers for ``url``: version, date and the credential's Authorization."""
        h = {"x-ms-version": API_VERSION, "x-ms-date": date, **(extra or {})}
        if self.account_key:
            h["Authorization"] = shared_key_authorization(self.account, self.account_key, method, url, h)
        elif self.bearer:
            h["Authorization"] = f"Bearer {self.bearer}"
        return h


# The standard headers Shared Key signs, in its order (Content-Length empty when 0).
_SIGNED = (
    "content-encoding",
    "content-language",
    "content-length",
    "content-md5",
    "content-type",
    "date",
    "if-modified-since",
    "if-match",
    "if-none-match",
    "if-unmodified-since",
    "range",
)


def shared_key_authorization(account: str, key: str, method: str, url: str, headers: Mapping[str, str]) -> str:
    """The ``Authorization: SharedKey`` value for one Blob request (Azure's 2009-09-19+ scheme)."""
    lower = {k.lower(): v.strip() for k, v in headers.items()}
    std = [lower.get(h, "") for h in _SIGNED]
    if std[2] == "0":
        std[2] = ""
    ms = "".join(f"{k}:{lower[k]}\n" for k in sorted(k for k in lower if k.startswith("x-ms-")))
    parts = urlsplit(url)
    # The resource is the account and the URL path as sent; on a path-style
    # endpoint (Azurite) the path already starts with the account, so it
    # appears twice, as the emulator expects.
    resource = f"/{account}{parts.path or '/'}"
    params: dict[str, list[str]] = {}
    for k, v in parse_qsl(parts.query, keep_blank_values=True):
        params.setdefault(k.lower(), []).append(v)
    for k in sorted(params):
        resource += f"\n{k}:{','.join(sorted(params[k]))}"
    to_sign = "\n".join([method.upper(), *std]) + "\n" + ms + resource
    try:
        secret = base64.b64decode(key, validate=True)
    except ValueError:
        raise AzureUriError("the Azure account key is not base64") from None
    sig = base64.b64encode(hmac.new(secret, to_sign.encode(), hashlib.sha256).digest()).decode()
    return f"SharedKey {account}:{sig}"
