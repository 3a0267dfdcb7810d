"""The all-in-one's configuration (``depot server``), read once from the environment.

The three services share one port, so one :class:`ServerConfig`; the
manifest service's own settings are :class:`ManifestSettings` as in its
own process. What the all-in-one adds: the data dir, an optional external
database, the worker count (and the reference fan-out its processes share
when there are several, read as the manifest service reads it), and an
internal secret that is optional because the launcher generates one in the
data dir (``app.start``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from depot.services.common.config import ServerConfig, whole_number
from depot.services.gc.config import GcSettings
from depot.services.manifest.config import (
    ManifestSettings,
    data_dir_from_env,
    fanout_settings_from_env,
    fanout_settings_to_env,
)
from depot.services.manifest.fanout import FanOutSettings
from depot.services.metadata.config import DEFAULT_PORT

MAX_WORKERS = 64


@dataclass(frozen=True)
class AllInOneConfig:
    server: ServerConfig
    # Embedded PostgreSQL, blobs, admin key, internal secret, server lock.
    data_dir: Path
    manifest: ManifestSettings
    # The collector's grace period and schedule (the first process runs it).
    gc: GcSettings = GcSettings()
    # None: start an embedded PostgreSQL under data_dir.
    database_url: str | None = None
    # Server processes sharing the port (SO_REUSEPORT), so the services use
    # more than one core; 1 keeps everything in one process.
    workers: int = 1
    # How the processes share a large reference listing; used only when
    # workers > 1 (one process has nobody to share it with).
    fanout: FanOutSettings = FanOutSettings()
    # None: the one kept in data_dir (generated on first start).
    internal_secret: bytes | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AllInOneConfig:
        secret = env.get("DEPOT_INTERNAL_SECRET")
        return cls(
            server=ServerConfig.from_env(env, default_port=DEFAULT_PORT),
            data_dir=data_dir_from_env(env),
            manifest=ManifestSettings.from_env(env),
            gc=GcSettings.from_env(env),
            database_url=env.get("DEPOT_DATABASE_URL") or None,
            workers=whole_number(env, "DEPOT_WORKERS", 1, low=1, high=MAX_WORKERS),
            fanout=fanout_settings_from_env(env),
            internal_secret=secret.encode() if secret else None,
        )

    def to_env(self) -> dict[str, str]:
        """The environment ``from_env`` reads this configuration back from
        (how the all-in-one hands its settings to its worker processes, which
        get the internal secret another way: it is not in the result)."""
        values = {
            **self.server.to_env(),
            **self.manifest.to_env(),
            **self.gc.to_env(),
            **fanout_settings_to_env(self.fanout),
            "DEPOT_DATA_DIR": str(self.data_dir),
            "DEPOT_DATABASE_URL": self.database_url or "",
            "DEPOT_WORKERS": str(self.workers),
        }
        return {k: v for k, v in values.items() if v}


__all__ = ["AllInOneConfig", "MAX_WORKERS"]
