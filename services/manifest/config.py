"""The manifest service's configuration, read once from the environment.

:class:`ManifestSettings` is what the service itself reads wherever it runs
(its own process or the all-in-one): the blob store, staging, references
and the TLS it presents when calling metadata. :class:`ManifestConfig` is
its own process: those settings plus where it serves, where metadata is
and the internal secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from depot.services.common import tls
from depot.services.common.config import ConfigError, ServerConfig, flag, internal_secret, seconds, whole_number

from ._s3_http import S3Config
from .blobs import DEFAULT_GC_GRACE_S
from .fanout import FanOutSettings
from .operations import OperationSettings
from .references import ReferencePolicy
from .store import BlobStore, S3Options, open_store

DEFAULT_PORT = 50052


@dataclass(frozen=True)
class ManifestSettings:
    """The manifest service's own settings, in whichever process it runs."""

    # file:///... or s3://bucket/prefix; default: <data dir>/blobs.
    storage_url: str
    # Where an S3 store stages uploads (a local store stages under its root).
    staging_dir: Path
    s3: S3Options
    # Buckets the service may list for references ("*" = any).
    reference_buckets: str = ""
    reference_s3_endpoint_url: str | None = None
    # Staged files untouched this long are a crash's leftovers and are
    # swept; a client stream idle this long is closed.
    staging_grace_s: float = 3600.0
    upload_idle_timeout_s: float = 300.0
    # A reference listing (ResolveReferences) no caller follows for this
    # long is cancelled; a finished one's result is kept this long for
    # callers re-attaching after a dropped connection.
    resolve_grace_s: float = 30.0
    resolve_retention_s: float = 600.0
    # The GC's grace period (DEPOT_GRACE_PERIOD_S, shared with the metadata
    # and GC services): a stored blob or manifest relied on instead of
    # written is refreshed when older than half of it (docs/gc.md).
    gc_grace_s: float = DEFAULT_GC_GRACE_S
    # How calls to metadata verify it and what they present; None: plain
    # where allowed (see tls.py).
    client_tls: tls.ClientTLS | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ManifestSettings:
        data_dir = data_dir_from_env(env)
        grace_s, idle_s = _staging(env)
        try:
            client_tls = tls.client_tls_from_env(env)
        except ValueError as e:  # tls.py's messages already name the variable
            raise ConfigError(str(e)) from None
        return cls(
            storage_url=env.get("DEPOT_STORAGE_URL") or (data_dir / "blobs").as_uri(),
            staging_dir=data_dir / "staging",
            s3=S3Options(
                endpoint_url=env.get("DEPOT_S3_ENDPOINT_URL") or None,
                region=env.get("DEPOT_S3_REGION") or None,
                sse=env.get("DEPOT_S3_SSE") or None,
                sse_kms_key_id=env.get("DEPOT_S3_SSE_KMS_KEY_ID") or None,
            ),
            reference_buckets=env.get("DEPOT_REFERENCE_BUCKETS", ""),
            reference_s3_endpoint_url=(
                env.get("DEPOT_REFERENCE_S3_ENDPOINT_URL") or env.get("DEPOT_S3_ENDPOINT_URL") or None
            ),
            staging_grace_s=grace_s,
            upload_idle_timeout_s=idle_s,
            resolve_grace_s=seconds(env, "DEPOT_RESOLVE_GRACE_S", 30.0),
            resolve_retention_s=seconds(env, "DEPOT_RESOLVE_RETENTION_S", 600.0),
            gc_grace_s=seconds(env, "DEPOT_GRACE_PERIOD_S", DEFAULT_GC_GRACE_S),
            client_tls=client_tls,
        )

    def to_env(self) -> dict[str, str]:
        """The variables ``from_env`` reads these settings back from (all but
        DEPOT_DATA_DIR, which the staging dir lives under)."""
        values = {
            "DEPOT_STORAGE_URL": self.storage_url,
            "DEPOT_S3_ENDPOINT_URL": self.s3.endpoint_url or "",
            "DEPOT_S3_REGION": self.s3.region or "",
            "DEPOT_S3_SSE": self.s3.sse or "",
            "DEPOT_S3_SSE_KMS_KEY_ID": self.s3.sse_kms_key_id or "",
            "DEPOT_REFERENCE_BUCKETS": self.reference_buckets,
            "DEPOT_REFERENCE_S3_ENDPOINT_URL": self.reference_s3_endpoint_url or "",
            "DEPOT_STAGING_GRACE_S": repr(self.staging_grace_s),
            "DEPOT_UPLOAD_IDLE_TIMEOUT_S": repr(self.upload_idle_timeout_s),
            "DEPOT_RESOLVE_GRACE_S": repr(self.resolve_grace_s),
            "DEPOT_RESOLVE_RETENTION_S": repr(self.resolve_retention_s),
            "DEPOT_GRACE_PERIOD_S": repr(self.gc_grace_s),
        }
        if self.client_tls is not None:
            values.update(self.client_tls.to_env())
        return {k: v for k, v in values.items() if v}

    async def open_store(self) -> BlobStore:
        """The blob store these settings name (S3 options only for ``s3://``)."""
        s3 = self.s3 if self.storage_url.startswith("s3://") else None
        return await open_store(
            self.storage_url, staging_dir=self.staging_dir, staging_grace_s=self.staging_grace_s, s3=s3
        )

    def operation_settings(self) -> OperationSettings:
        return OperationSettings(grace_s=self.resolve_grace_s, retention_s=self.resolve_retention_s)

    def reference_policy(self) -> ReferencePolicy:
        s3 = S3Config(endpoint_url=self.reference_s3_endpoint_url, region=self.s3.region)
        return ReferencePolicy.from_setting(self.reference_buckets, s3)


@dataclass(frozen=True)
class ManifestConfig:
    """``python -m depot.services.manifest serve``: the service in its own process."""

    server: ServerConfig
    # HMAC key for the manifest tokens metadata verifies.
    internal_secret: bytes
    metadata_address: str
    settings: ManifestSettings
    # DEPOT_INSECURE: plaintext to a metadata address off this machine is meant.
    insecure: bool = False
    # Optional: the PostgreSQL where manifest replicas share large reference
    # listings (docs/fanout.md); None lists every reference in the process called.
    database_url: str | None = None
    fanout: FanOutSettings = FanOutSettings()

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ManifestConfig:
        server = ServerConfig.from_env(env, default_port=DEFAULT_PORT)
        settings = ManifestSettings.from_env(env)
        config = cls(
            server=server,
            internal_secret=internal_secret(env),
            metadata_address=env.get("DEPOT_METADATA_ADDRESS") or "127.0.0.1:50051",
            settings=settings,
            insecure=flag(env, "DEPOT_INSECURE"),
            database_url=env.get("DEPOT_DATABASE_URL") or None,
            fanout=fanout_settings_from_env(env),
        )
        try:
            # Refused here, at startup and in one line, rather than when the
            # channel is made: this channel carries callers' API keys.
            tls.plaintext_target(config.metadata_address, settings.client_tls, server.tls, insecure=config.insecure)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        return config


def fanout_settings_from_env(env: Mapping[str, str]) -> FanOutSettings:
    """DEPOT_FANOUT_*: read here for every process that fans out (this
    service's own and the all-in-one's workers), so both take the same values."""
    return FanOutSettings(
        min_objects=whole_number(env, "DEPOT_FANOUT_MIN_OBJECTS", 100_000, low=1, high=10**9),
        lease_s=seconds(env, "DEPOT_FANOUT_LEASE_S", 30.0),
    )


def fanout_settings_to_env(settings: FanOutSettings) -> dict[str, str]:
    """The variables ``fanout_settings_from_env`` reads ``settings`` back from."""
    return {
        "DEPOT_FANOUT_MIN_OBJECTS": str(settings.min_objects),
        "DEPOT_FANOUT_LEASE_S": repr(settings.lease_s),
    }


def data_dir_from_env(env: Mapping[str, str]) -> Path:
    """DEPOT_DATA_DIR, default ``~/.depot`` (read, never created here)."""
    return Path(env.get("DEPOT_DATA_DIR") or Path.home() / ".depot").expanduser()


def _staging(env: Mapping[str, str]) -> tuple[float, float]:
    """The staging grace period and the upload idle timeout, checked together.

    A live upload writes its staged file at least once per idle timeout (or
    the server closes it), so a grace longer than the idle timeout never
    sweeps a file that is still being written; a shorter one would.
    """
    grace_s = seconds(env, "DEPOT_STAGING_GRACE_S", 3600.0)
    idle_s = seconds(env, "DEPOT_UPLOAD_IDLE_TIMEOUT_S", 300.0)
    if grace_s <= idle_s:
        raise ConfigError(
            f"DEPOT_STAGING_GRACE_S ({grace_s:g}) must be longer than DEPOT_UPLOAD_IDLE_TIMEOUT_S ({idle_s:g}): "
            "a shorter grace sweeps uploads still in flight"
        )
    return grace_s, idle_s


__all__ = [
    "DEFAULT_PORT",
    "ManifestConfig",
    "ManifestSettings",
    "data_dir_from_env",
    "fanout_settings_from_env",
    "fanout_settings_to_env",
]
