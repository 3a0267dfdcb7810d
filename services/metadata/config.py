"""The metadata service's configuration, read once from the environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from depot.services.common.config import ServerConfig, internal_secret, required, seconds

from .housekeeping import DEFAULT_GRACE

DEFAULT_PORT = 50051


@dataclass(frozen=True)
class MetadataConfig:
    """``python -m depot.services.metadata serve``."""

    server: ServerConfig
    # postgresql://... (the service keeps no state of its own).
    database_url: str
    # HMAC key that verifies the manifest service's tokens.
    internal_secret: bytes
    # How long a deleted version stays restorable (its purge_time).
    grace: timedelta = DEFAULT_GRACE

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> MetadataConfig:
        return cls(
            server=ServerConfig.from_env(env, default_port=DEFAULT_PORT),
            database_url=database_url(env),
            internal_secret=internal_secret(env),
            grace=grace_period(env),
        )


def database_url(env: Mapping[str, str]) -> str:
    """DEPOT_DATABASE_URL, all that ``migrate`` and ``bootstrap-admin`` read."""
    return required(env, "DEPOT_DATABASE_URL")


def grace_period(env: Mapping[str, str]) -> timedelta:
    """DEPOT_GRACE_PERIOD_S: how long deleted versions stay restorable before
    the GC purges them (default housekeeping.DEFAULT_GRACE, 7 days)."""
    return timedelta(seconds=seconds(env, "DEPOT_GRACE_PERIOD_S", DEFAULT_GRACE.total_seconds()))


__all__ = ["DEFAULT_PORT", "MetadataConfig", "database_url", "grace_period"]
