"""The metadata service's configuration, read once from the environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from depot.services.common.config import ServerConfig, internal_secret, required

DEFAULT_PORT = 50051


@dataclass(frozen=True)
class MetadataConfig:
    """``python -m depot.services.metadata serve``."""

    server: ServerConfig
    # postgresql://... (the service keeps no state of its own).
    database_url: str
    # HMAC key that verifies the manifest service's tokens.
    internal_secret: bytes

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> MetadataConfig:
        return cls(
            server=ServerConfig.from_env(env, default_port=DEFAULT_PORT),
            database_url=database_url(env),
            internal_secret=internal_secret(env),
        )


def database_url(env: Mapping[str, str]) -> str:
    """DEPOT_DATABASE_URL, all that ``migrate`` and ``bootstrap-admin`` read."""
    return required(env, "DEPOT_DATABASE_URL")


__all__ = ["DEFAULT_PORT", "MetadataConfig", "database_url"]
