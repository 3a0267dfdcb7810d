"""The gc service's configuration, read once from the environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from depot.services.common.config import ServerConfig, required, seconds

DEFAULT_PORT = 50053


@dataclass(frozen=True)
class GcConfig:
    """``python -m depot.services.gc serve|once``."""

    server: ServerConfig
    # postgresql://... of the metadata service's database.
    database_url: str
    # Seconds between the passes ``serve`` runs on its own.
    interval_s: float = 3600.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> GcConfig:
        return cls(
            server=ServerConfig.from_env(env, default_port=DEFAULT_PORT),
            database_url=required(env, "DEPOT_DATABASE_URL"),
            interval_s=seconds(env, "DEPOT_GC_INTERVAL_S", 3600.0),
        )


__all__ = ["DEFAULT_PORT", "GcConfig"]
