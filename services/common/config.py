"""What every service process reads from its environment, and how a value is read.

Each service keeps its own frozen config beside its code
(``depot.services.metadata.config``, ``...manifest.config``,
``...gc.config``, and the all-in-one's in ``...allinone.config``), holding
only the settings that service reads; the piece they share, where and how
a process serves, is :class:`ServerConfig` here.

Every ``from_env`` is pure: it reads a mapping and returns a config or
raises :class:`ConfigError`, a one-line message naming the variable and
its bad value, which each ``__main__`` prints before exiting 2. Nothing here
creates files or secrets; the all-in-one launcher generates what it keeps
in its data dir.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from depot.core.addresses import parse_flag
from depot.core.errors import InvalidValue

from .tls import ServerTLS, server_tls_from_env


class ConfigError(ValueError):
    """A setting is missing or cannot be used; the message is one line naming the variable."""


# What OTEL_TRACES_EXPORTER / OTEL_METRICS_EXPORTER may name ("none": off).
EXPORTERS = ("otlp", "console")


@dataclass(frozen=True)
class TelemetryConfig:
    """Where a process's spans and metrics go and how its logs look (see telemetry.py).

    Read from the standard OpenTelemetry variables only: an exporter list is
    ``OTEL_{TRACES,METRICS}_EXPORTER``, defaulting to ``otlp`` when
    ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or the signal's own endpoint) is set and
    to nothing otherwise, so an unconfigured process exports, and pays for,
    nothing. ``OTEL_SDK_DISABLED=true`` turns both off.
    """

    # Exporters of spans, of metrics: "otlp", "console"; empty: off.
    traces: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ()
    # One JSON object per log line, for log collectors in a cluster.
    json_logs: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> TelemetryConfig:
        log_format = env.get("DEPOT_LOG_FORMAT", "").strip().lower()
        if log_format not in ("", "text", "json"):
            raise ConfigError(f"DEPOT_LOG_FORMAT must be text or json, not {env['DEPOT_LOG_FORMAT']!r}")
        off = env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"
        return cls(
            traces=() if off else _exporters(env, "TRACES"),
            metrics=() if off else _exporters(env, "METRICS"),
            json_logs=log_format == "json",
        )

    def to_env(self) -> dict[str, str]:
        values = {
            "OTEL_TRACES_EXPORTER": ",".join(self.traces) or "none",
            "OTEL_METRICS_EXPORTER": ",".join(self.metrics) or "none",
            "DEPOT_LOG_FORMAT": "json" if self.json_logs else "",
        }
        return {k: v for k, v in values.items() if v}


def _exporters(env: Mapping[str, str], signal: str) -> tuple[str, ...]:
    name = f"OTEL_{signal}_EXPORTER"
    raw = env.get(name, "").strip().lower()
    if not raw:
        endpoint = env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get(f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT")
        return ("otlp",) if endpoint else ()
    names = tuple(dict.fromkeys(n.strip() for n in raw.split(",") if n.strip()))
    if names == ("none",):
        return ()
    bad = [n for n in names if n not in EXPORTERS]
    if bad:
        raise ConfigError(f"{name} must list otlp, console or none, not {env[name]!r}")
    return names


@dataclass(frozen=True)
class ServerConfig:
    """Where and how a service process serves, and its telemetry (shared by every service)."""

    listen: str
    # None: plaintext (loopback/dev). See tls.py for what each setting does.
    tls: ServerTLS | None = None
    # A second, plaintext port answering only grpc.health.v1, for probes
    # that cannot speak TLS (Kubernetes' grpc probes).
    health_listen: str | None = None
    telemetry: TelemetryConfig = TelemetryConfig()

    @classmethod
    def from_env(cls, env: Mapping[str, str], *, default_port: int) -> ServerConfig:
        try:
            tls = server_tls_from_env(env)
        except ValueError as e:  # tls.py's messages already name the variable
            raise ConfigError(str(e)) from None
        return cls(
            listen=env.get("DEPOT_LISTEN") or f"127.0.0.1:{default_port}",
            tls=tls,
            health_listen=env.get("DEPOT_HEALTH_LISTEN") or None,
            telemetry=TelemetryConfig.from_env(env),
        )

    def to_env(self) -> dict[str, str]:
        """The variables ``from_env`` reads this back from."""
        values = {"DEPOT_LISTEN": self.listen, "DEPOT_HEALTH_LISTEN": self.health_listen or ""}
        if self.tls is not None:
            values.update(self.tls.to_env())
        values.update(self.telemetry.to_env())
        return {k: v for k, v in values.items() if v}


def required(env: Mapping[str, str], name: str) -> str:
    """A variable that has no default (an empty value counts as unset)."""
    value = env.get(name, "")
    if not value:
        raise ConfigError(f"{name} is required")
    return value


def internal_secret(env: Mapping[str, str]) -> bytes:
    """DEPOT_INTERNAL_SECRET, the HMAC key metadata and manifest share.

    Required when the services run as separate processes: each would
    otherwise sign or verify manifest tokens with a key the other does not
    know. Only the all-in-one generates one (in its data dir).
    """
    return required(env, "DEPOT_INTERNAL_SECRET").encode()


def seconds(env: Mapping[str, str], name: str, default: float) -> float:
    """A positive, finite number of seconds."""
    value = env.get(name, "")
    if not value:
        return default
    try:
        n = float(value)
    except ValueError:
        n = math.nan
    if not 0 < n < 10**9:
        raise ConfigError(f"{name} must be a positive number of seconds, not {value!r}")
    return n


def whole_number(env: Mapping[str, str], name: str, default: int, *, low: int, high: int) -> int:
    """An integer from ``low`` to ``high``."""
    value = env.get(name, "")
    if not value:
        return default
    try:
        n = int(value)
    except ValueError:
        n = low - 1
    if not low <= n <= high:
        raise ConfigError(f"{name} must be a whole number from {low} to {high}, not {value!r}")
    return n


def flag(env: Mapping[str, str], name: str) -> bool:
    """An on/off switch, spelled as the SDK reads it (unset: off).

    Anything else is refused rather than read as off: ``DEPOT_INSECURE=ture``
    means someone wanted it on.
    """
    try:
        return parse_flag(name, env.get(name, ""))
    except InvalidValue as e:
        raise ConfigError(str(e)) from None


__all__ = [
    "ConfigError",
    "ServerConfig",
    "TelemetryConfig",
    "flag",
    "internal_secret",
    "required",
    "seconds",
    "whole_number",
]
