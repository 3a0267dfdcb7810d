"""The gc service's configuration, read once from the environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from depot.services.common.config import ServerConfig, required, seconds
from depot.services.manifest.public import ManifestSettings, data_dir_from_env
from depot.services.metadata.public import housekeeping

DEFAULT_PORT = 50053
DEFAULT_INTERVAL_S = 3600.0


@dataclass(frozen=True)
class GcSettings:
    """What a collector needs wherever it runs (its own process or the all-in-one)."""

    # DEPOT_GRACE_PERIOD_S: how long a deleted version stays restorable (the
    # metadata service reads the same variable for a user's delete), how old
    # a pending version must be to count as abandoned, and how old an
    # unreferenced blob must be before it is swept (an upload in flight).
    grace: timedelta = housekeeping.DEFAULT_GRACE
    # DEPOT_MANIFEST_GRACE_PERIOD_S: the grace period the manifest service
    # runs with (its DEPOT_GRACE_PERIOD_S), when the deployment tells the GC
    # (deploy/k8s feeds both from one ConfigMap key). The manifest service
    # refreshes a blob it answers "present" once older than half ITS grace,
    # so a GC sweeping with a shorter grace could delete a blob a commit is
    # about to rely on: the collector refuses to sweep then (collector.py).
    # None: not told; the GC's own grace is the only one it can check.
    manifest_grace: timedelta | None = None
    # DEPOT_GC_INTERVAL_S: seconds between scheduled passes; 0 = no schedule
    # (RunNow and `depot gc run` still work).
    interval_s: float = DEFAULT_INTERVAL_S
    # Scratch space of the mark phase (sorted runs of digests on disk).
    work_dir: Path = field(default_factory=lambda: Path.home() / ".depot" / "gc")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> GcSettings:
        default_grace = housekeeping.DEFAULT_GRACE.total_seconds()
        return cls(
            grace=timedelta(seconds=seconds(env, "DEPOT_GRACE_PERIOD_S", default_grace)),
            manifest_grace=_manifest_grace(env),
            interval_s=_interval(env),
            work_dir=Path(env.get("DEPOT_GC_WORK_DIR") or data_dir_from_env(env) / "gc"),
        )

    def to_env(self) -> dict[str, str]:
        """The variables ``from_env`` reads these settings back from."""
        env = {
            "DEPOT_GRACE_PERIOD_S": repr(self.grace.total_seconds()),
            "DEPOT_GC_INTERVAL_S": repr(self.interval_s),
            "DEPOT_GC_WORK_DIR": str(self.work_dir),
        }
        if self.manifest_grace is not None:
            env["DEPOT_MANIFEST_GRACE_PERIOD_S"] = repr(self.manifest_grace.total_seconds())
        return env


@dataclass(frozen=True)
class GcConfig:
    """``python -m depot.services.gc serve|once``."""

    server: ServerConfig
    # postgresql://... of the metadata service's database.
    database_url: str
    gc: GcSettings
    # The blob store the manifest service writes (the same DEPOT_STORAGE_URL
    # and S3 settings): the sweep deletes from it.
    storage: ManifestSettings

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> GcConfig:
        return cls(
            server=ServerConfig.from_env(env, default_port=DEFAULT_PORT),
            database_url=required(env, "DEPOT_DATABASE_URL"),
            gc=GcSettings.from_env(env),
            storage=ManifestSettings.from_env(env),
        )


def _manifest_grace(env: Mapping[str, str]) -> timedelta | None:
    """DEPOT_MANIFEST_GRACE_PERIOD_S: positive seconds, or unset."""
    if not env.get("DEPOT_MANIFEST_GRACE_PERIOD_S", "").strip():
        return None
    return timedelta(seconds=seconds(env, "DEPOT_MANIFEST_GRACE_PERIOD_S", 0.0))


def _interval(env: Mapping[str, str]) -> float:
    """DEPOT_GC_INTERVAL_S: positive seconds, or 0 to turn the schedule off."""
    if env.get("DEPOT_GC_INTERVAL_S", "").strip() in ("0", "0.0"):
        return 0.0
    return seconds(env, "DEPOT_GC_INTERVAL_S", DEFAULT_INTERVAL_S)


__all__ = ["DEFAULT_PORT", "GcConfig", "GcSettings"]
