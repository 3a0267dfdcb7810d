"""Service configuration, read once from the environment in ``__main__``.

Every setting has an embedded default so that ``depot server`` runs on a
laptop with nothing configured.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .secret_files import private_dir, tighten_secret_file, write_secret_file
from .tls import ClientTLS, ServerTLS, client_tls_from_env, server_tls_from_env

if TYPE_CHECKING:
    from depot.services.manifest.references import ReferencePolicy


@dataclass(frozen=True)
class Config:
    listen: str
    data_dir: Path
    # None: start an embedded PostgreSQL under data_dir.
    database_url: str | None
    # file:///... or s3://bucket/prefix; default: data_dir/blobs.
    storage_url: str
    # HMAC key shared by manifest and metadata for manifest tokens.
    internal_secret: bytes
    metadata_address: str
    s3_endpoint_url: str | None
    s3_region: str | None
    s3_sse: str | None
    s3_sse_kms_key_id: str | None
    gc_interval_s: float
    # Buckets the manifest service may list for references ("*" = any).
    reference_buckets: str
    reference_s3_endpoint_url: str | None
    # All-in-one: server processes sharing the port (SO_REUSEPORT), so the
    # services use more than one core; 1 keeps everything in one process.
    workers: int = 1
    # None: plaintext (loopback/dev). See tls.py for what each setting does.
    tls: ServerTLS | None = None
    client_tls: ClientTLS | None = None
    # A second, plaintext port answering only grpc.health.v1, for probes
    # that cannot speak TLS (Kubernetes' grpc probes).
    health_listen: str | None = None
    # Manifest service: staged files untouched this long are a crash's
    # leftovers and are swept; a client stream idle this long is closed.
    staging_grace_s: float = 3600.0
    upload_idle_timeout_s: float = 300.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ, *, default_port: int = 50051) -> Config:
        data_dir = Path(env.get("DEPOT_DATA_DIR", Path.home() / ".depot")).expanduser()
        secret = env.get("DEPOT_INTERNAL_SECRET")
        if secret:
            key = secret.encode()
        else:
            # All-in-one: generate once and keep it with the data (0600 from
            # its first byte; a concurrent first start keeps the file that won).
            path = data_dir / "internal.secret"
            if not path.exists():
                write_secret_file(private_dir(data_dir) / path.name, secrets.token_hex(32), replace=False)
            tighten_secret_file(path)
            key = path.read_text().strip().encode()
        return cls(
            listen=env.get("DEPOT_LISTEN", f"127.0.0.1:{default_port}"),
            data_dir=data_dir,
            database_url=env.get("DEPOT_DATABASE_URL") or None,
            storage_url=env.get("DEPOT_STORAGE_URL") or (data_dir / "blobs").as_uri(),
            internal_secret=key,
            metadata_address=env.get("DEPOT_METADATA_ADDRESS", "127.0.0.1:50051"),
            s3_endpoint_url=env.get("DEPOT_S3_ENDPOINT_URL") or None,
            s3_region=env.get("DEPOT_S3_REGION") or None,
            s3_sse=env.get("DEPOT_S3_SSE") or None,
            s3_sse_kms_key_id=env.get("DEPOT_S3_SSE_KMS_KEY_ID") or None,
            gc_interval_s=float(env.get("DEPOT_GC_INTERVAL_S", "3600")),
            reference_buckets=env.get("DEPOT_REFERENCE_BUCKETS", ""),
            reference_s3_endpoint_url=(
                env.get("DEPOT_REFERENCE_S3_ENDPOINT_URL") or env.get("DEPOT_S3_ENDPOINT_URL") or None
            ),
            workers=_workers(env.get("DEPOT_WORKERS", "1")),
            tls=server_tls_from_env(env),
            client_tls=client_tls_from_env(env),
            health_listen=env.get("DEPOT_HEALTH_LISTEN") or None,
            **_staging(env.get("DEPOT_STAGING_GRACE_S", "3600"), env.get("DEPOT_UPLOAD_IDLE_TIMEOUT_S", "300")),
        )

    def to_env(self) -> dict[str, str]:
        """The environment ``from_env`` reads this configuration back from
        (how the all-in-one hands its settings to its worker processes, which
        get the internal secret another way: it is not in the result)."""
        values = {
            "DEPOT_LISTEN": self.listen,
            "DEPOT_DATA_DIR": str(self.data_dir),
            "DEPOT_DATABASE_URL": self.database_url,
            "DEPOT_STORAGE_URL": self.storage_url,
            "DEPOT_METADATA_ADDRESS": self.metadata_address,
            "DEPOT_S3_ENDPOINT_URL": self.s3_endpoint_url,
            "DEPOT_S3_REGION": self.s3_region,
            "DEPOT_S3_SSE": self.s3_sse,
            "DEPOT_S3_SSE_KMS_KEY_ID": self.s3_sse_kms_key_id,
            "DEPOT_GC_INTERVAL_S": repr(self.gc_interval_s),
            "DEPOT_REFERENCE_BUCKETS": self.reference_buckets,
            "DEPOT_REFERENCE_S3_ENDPOINT_URL": self.reference_s3_endpoint_url,
            "DEPOT_WORKERS": str(self.workers),
            "DEPOT_HEALTH_LISTEN": self.health_listen,
            "DEPOT_STAGING_GRACE_S": repr(self.staging_grace_s),
            "DEPOT_UPLOAD_IDLE_TIMEOUT_S": repr(self.upload_idle_timeout_s),
            **(self.tls.to_env() if self.tls else {}),
            **(self.client_tls.to_env() if self.client_tls else {}),
        }
        return {k: v for k, v in values.items() if v}

    def store_options(self) -> dict[str, object]:
        """``open_store``'s keyword arguments for this configuration."""
        options: dict[str, object] = {"staging_dir": self.data_dir / "staging", "staging_grace_s": self.staging_grace_s}
        if self.storage_url.startswith("s3://"):
            options.update(self.s3_options())
        return options

    def s3_options(self) -> dict[str, str | None]:
        return {
            "endpoint_url": self.s3_endpoint_url,
            "region": self.s3_region,
            "sse": self.s3_sse,
            "sse_kms_key_id": self.s3_sse_kms_key_id,
        }

    def reference_policy(self) -> ReferencePolicy:
        from depot.services.manifest._s3_http import S3Config
        from depot.services.manifest.references import ReferencePolicy

        s3 = S3Config(endpoint_url=self.reference_s3_endpoint_url, region=self.s3_region)
        return ReferencePolicy.from_setting(self.reference_buckets, s3)


MAX_WORKERS = 64


def _seconds(name: str, value: str) -> float:
    try:
        n = float(value)
    except ValueError:
        n = 0.0
    if not 0 < n < 10**9:
        raise ValueError(f"{name} must be a positive number of seconds, not {value!r}")
    return n


def _staging(grace: str, idle: str) -> dict[str, float]:
    """The staging grace period and the upload idle timeout, checked together.

    A live upload writes its staged file at least once per idle timeout (or
    the server closes it), so a grace longer than the idle timeout never
    sweeps a file that is still being written; a shorter one would.
    """
    grace_s = _seconds("DEPOT_STAGING_GRACE_S", grace)
    idle_s = _seconds("DEPOT_UPLOAD_IDLE_TIMEOUT_S", idle)
    if grace_s <= idle_s:
        raise ValueError(
            f"DEPOT_STAGING_GRACE_S ({grace_s:g}) must be longer than DEPOT_UPLOAD_IDLE_TIMEOUT_S ({idle_s:g}): "
            "a shorter grace sweeps uploads still in flight"
        )
    return {"staging_grace_s": grace_s, "upload_idle_timeout_s": idle_s}


def _workers(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        n = 0
    if not 1 <= n <= MAX_WORKERS:
        raise ValueError(f"DEPOT_WORKERS must be a whole number from 1 to {MAX_WORKERS}, not {value!r}")
    return n
