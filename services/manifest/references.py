"""Server-side references: listing object-store prefixes into manifest segments.

The server lists with its own credentials, so it must not list what the
caller could not: operators name the buckets Depot may list for its users
(``DEPOT_REFERENCE_BUCKETS``, ``*`` for any); everything else is refused
before a single request is sent. ``file://`` and ``http(s)://`` references
are resolved by the SDK on the caller's machine, so the server never reads
a caller-supplied path or URL.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from depot.core.azure_blob import is_azure_uri, redact
from depot.services.common.errors import InvalidArgument, PermissionDenied

from ._s3_http import S3Config
from .azure_listing import AzureConfig, parse_reference_uri, write_azure_reference
from .gcs_listing import GCSConfig, parse_gcs_uri, write_gcs_reference
from .s3_listing import FanOut, ReferenceStats, parse_s3_uri, write_s3_reference

# The default and the most a reference may ask for: a manifest of this many
# entries is what the server is sized to list, store and read back.
DEFAULT_MAX_OBJECTS = 10_000_000
MAX_OBJECTS = DEFAULT_MAX_OBJECTS


@dataclass(frozen=True)
class ReferenceSpec:
    uri: str
    name: str = ""
    max_objects: int = DEFAULT_MAX_OBJECTS
    # A prefix that lists nothing is refused (most often a typo) unless asked for.
    allow_empty: bool = False


class ListingProgress:
    """Objects and bytes listed so far over one header's references.

    Read off the manifest writer the listing feeds (its running count and
    size) whenever someone asks, so the listing itself pays nothing per page
    or key for being watched.
    """

    def __init__(self) -> None:
        self._objects = 0
        self._bytes = 0
        self._writer: Any = None

    def listing(self, writer: Any) -> None:
        """The writer the current reference is listed into."""
        self._writer = writer

    def listed(self, objects: int, size: int) -> None:
        """The current reference is done: its totals."""
        self._objects += objects
        self._bytes += size
        self._writer = None

    def snapshot(self) -> tuple[int, int]:
        w = self._writer
        if w is None:
            return self._objects, self._bytes
        return self._objects + w.count, self._bytes + w.total_size


@dataclass(frozen=True)
class _Lister:
    """How the server lists one URI scheme: the allowlist name of a URI's bucket, and the listing."""

    bucket: Callable[[str], str]
    write: Callable[[ReferencePolicy, ReferenceSpec, Any], Awaitable[ReferenceStats]]


def _s3_bucket(uri: str) -> str:
    return parse_s3_uri(uri)[0]


def _write_s3(policy: ReferencePolicy, spec: ReferenceSpec, writer: Any) -> Awaitable[ReferenceStats]:
    return write_s3_reference(
        spec.uri,
        writer,
        name=spec.name or None,
        max_objects=spec.max_objects,
        concurrency=policy.concurrency,
        session_config=policy.s3,
        fan_out=policy.fan_out,
    )


def _gcs_bucket(uri: str) -> str:
    return parse_gcs_uri(uri)[0]


def _write_gcs(policy: ReferencePolicy, spec: ReferenceSpec, writer: Any) -> Awaitable[ReferenceStats]:
    return write_gcs_reference(
        spec.uri,
        writer,
        name=spec.name or None,
        max_objects=spec.max_objects,
        concurrency=policy.concurrency,
        config=policy.gcs,
    )


def _azure_container(uri: str) -> str:
    # DEPOT_REFERENCE_BUCKETS names an Azure container as <account>/<container>.
    if not is_azure_uri(uri):
        raise InvalidArgument(
            f"reference {redact(uri)!r}: http(s):// references are resolved by the SDK "
            "(the server lists https:// URIs of Azure Blob accounts only)",
            field="uri",
        )
    return parse_reference_uri(uri).allow_key


def _write_azure(policy: ReferencePolicy, spec: ReferenceSpec, writer: Any) -> Awaitable[ReferenceStats]:
    return write_azure_reference(
        spec.uri,
        writer,
        name=spec.name or None,
        max_objects=spec.max_objects,
        concurrency=policy.concurrency,
        config=policy.azure,
    )


# The schemes the server lists, by URI scheme.
_LISTERS: dict[str, _Lister] = {
    "s3": _Lister(_s3_bucket, _write_s3),
    "gs": _Lister(_gcs_bucket, _write_gcs),
    "az": _Lister(_azure_container, _write_azure),
    "https": _Lister(_azure_container, _write_azure),
}


@dataclass(frozen=True)
class ReferencePolicy:
    buckets: frozenset[str] = frozenset()
    s3: S3Config = field(default_factory=S3Config)
    concurrency: int = 32
    # Azure credentials come from the environment (connection strings,
    # azure-identity's chain), as botocore's do for S3.
    azure: AzureConfig = field(default_factory=AzureConfig.from_env)
    # Lists a large s3:// reference across the manifest replicas (fanout.py); None: in this process.
    fan_out: FanOut | None = None
    # STORAGE_EMULATOR_HOST, when set, points it at an emulator (see gcs_http).
    gcs: GCSConfig = field(default_factory=GCSConfig)

    @classmethod
    def from_setting(cls, buckets: str, s3: S3Config) -> ReferencePolicy:
        return cls(frozenset(b.strip() for b in buckets.split(",") if b.strip()), s3)

    def check(self, spec: ReferenceSpec, i: int) -> None:
        field_ = f"header.references[{i}]"
        scheme = spec.uri.partition("://")[0]
        lister = _LISTERS.get(scheme)
        if lister is None:
            raise InvalidArgument(
                f"reference {redact(spec.uri)!r}: the server lists s3://, gs:// and Azure Blob references only; "
                "file:// and http(s):// references are resolved by the SDK",
                field=f"{field_}.uri",
            )
        if not 1 <= spec.max_objects <= MAX_OBJECTS:
            raise InvalidArgument(
                f"max_objects must be 1-{MAX_OBJECTS:,} (0 is the default, {DEFAULT_MAX_OBJECTS:,})",
                field=f"{field_}.max_objects",
            )
        bucket = lister.bucket(spec.uri)
        if not self.allows(scheme, bucket):
            raise PermissionDenied(
                f"bucket {bucket!r} is not one Depot may list for its users "
                "(an operator adds it to DEPOT_REFERENCE_BUCKETS; an Azure container as <account>/<container>)",
                field=f"{field_}.uri",
            )

    def allows(self, scheme: str, bucket: str) -> bool:
        """Whether DEPOT_REFERENCE_BUCKETS lets the server list ``bucket`` under ``scheme``.

        Entries name a store too, so adding a store never widens an existing
        setting: a bare name or ``*`` is an S3 bucket (what the setting meant
        before other stores existed), ``gs://name`` / ``gs://*`` a GCS bucket,
        and ``<account>/<container>`` / ``az://*`` an Azure container (both
        Azure spellings, az:// and https://, list the same container).
        """
        family = "az" if scheme == "https" else scheme
        if f"{family}://*" in self.buckets or f"{family}://{bucket}" in self.buckets:
            return True
        if family == "s3":
            return "*" in self.buckets or bucket in self.buckets
        # An Azure "<account>/<container>" cannot be an S3 bucket name (no '/' there).
        return family == "az" and bucket in self.buckets

    async def write(self, spec: ReferenceSpec, writer: Any) -> ReferenceStats:
        return await _LISTERS[spec.uri.partition("://")[0]].write(self, spec, writer)
