"""How a Client reaches Depot: one frozen settings object, built from arguments and environment in one place.

Each setting is the argument when given, else its environment variable,
else the default:

==================  ==========================================  ==================
setting             variable                                    default
==================  ==========================================  ==================
address             ``DEPOT_ADDRESS``                           ``127.0.0.1:50051``
manifest_address    ``DEPOT_MANIFEST_ADDRESS``                  the address
api_key             ``DEPOT_API_KEY``, ``DEPOT_API_KEY_FILE``   (required)
tls / tls_ca        ``DEPOT_TLS_CA`` (+ the others of _tls)     by the address
insecure            ``DEPOT_INSECURE``                          off
retry_window        ``DEPOT_RETRY_WINDOW``                      30 s
call_timeout        ``DEPOT_CALL_TIMEOUT``                      60 s
stream_timeout      ``DEPOT_STREAM_TIMEOUT``                    3600 s
==================  ==========================================  ==================

A bad value is one :class:`~depot.InvalidArgumentError` naming the argument
or variable it came from. The addresses and TLS are resolved before the key
is read: a refused plaintext address fails before anything could send the key.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ._exceptions import InvalidArgumentError, UnauthenticatedError
from ._tls import Target, resolve

DEFAULT_ADDRESS = "127.0.0.1:50051"
# How long a call keeps retrying after its first transient failure: covers a
# server restart (0.35 s with the database up; a few seconds when the
# embedded PostgreSQL starts too) and a database failover, with room to spare.
DEFAULT_RETRY_WINDOW_S = 30.0
# Deadlines: a unary call answers in milliseconds, so a minute means the
# server is stuck; a stream moves a blob or a manifest of any size.
DEFAULT_CALL_TIMEOUT_S = 60.0
DEFAULT_STREAM_TIMEOUT_S = 3600.0


@dataclass(frozen=True)
class ConnectionConfig:
    """Where a :class:`~depot.Client` connects, as whom, and how long it keeps trying."""

    address: str
    manifest_address: str
    metadata_target: Target
    manifest_target: Target
    api_key: str = field(repr=False)
    retry_window: float = DEFAULT_RETRY_WINDOW_S
    # A cap on the number of retries (None: the window alone decides).
    retries: int | None = None
    call_timeout: float = DEFAULT_CALL_TIMEOUT_S
    stream_timeout: float = DEFAULT_STREAM_TIMEOUT_S

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str],
        *,
        address: str | None = None,
        api_key: str | None = None,
        manifest_address: str | None = None,
        retry_window: float | None = None,
        retries: int | None = None,
        call_timeout: float | None = None,
        stream_timeout: float | None = None,
        tls: bool | None = None,
        tls_ca: str | Path | None = None,
        insecure: bool | None = None,
    ) -> ConnectionConfig:
        """The settings from the arguments given, the rest from ``env`` (see the module docstring)."""
        address, address_field = _setting(address, "address", env, "DEPOT_ADDRESS", DEFAULT_ADDRESS)
        manifest_address, manifest_field = _setting(
            manifest_address, "manifest_address", env, "DEPOT_MANIFEST_ADDRESS", address
        )
        targets = [
            resolve(a, tls=tls, tls_ca=tls_ca, insecure=insecure, env=env, field=f)
            for a, f in ((address, address_field), (manifest_address, manifest_field))
        ]
        return cls(
            address=address,
            manifest_address=manifest_address,
            metadata_target=targets[0],
            manifest_target=targets[1],
            api_key=_api_key(api_key, env),
            retry_window=_seconds(retry_window, "retry_window", env, "DEPOT_RETRY_WINDOW", DEFAULT_RETRY_WINDOW_S),
            retries=_retries(retries),
            call_timeout=_seconds(
                call_timeout, "call_timeout", env, "DEPOT_CALL_TIMEOUT", DEFAULT_CALL_TIMEOUT_S, positive=True
            ),
            stream_timeout=_seconds(
                stream_timeout, "stream_timeout", env, "DEPOT_STREAM_TIMEOUT", DEFAULT_STREAM_TIMEOUT_S, positive=True
            ),
        )


def _setting(value: str | None, argument: str, env: Mapping[str, str], variable: str, default: str) -> tuple[str, str]:
    """The value and the name of where it came from (the argument, the variable, or the default's argument)."""
    if value:
        return value, argument
    if env.get(variable):
        return env[variable], variable
    return default, argument


def _api_key(api_key: str | None, env: Mapping[str, str]) -> str:
    key = api_key or env.get("DEPOT_API_KEY")
    path = env.get("DEPOT_API_KEY_FILE")
    if not key and path:
        try:
            key = Path(path).expanduser().read_text().strip()
        except (OSError, UnicodeDecodeError) as e:
            reason = getattr(e, "strerror", None) or e
            raise InvalidArgumentError(
                f"DEPOT_API_KEY_FILE: cannot read {path!r}: {reason}", field="DEPOT_API_KEY_FILE"
            ) from None
    if not key:
        raise UnauthenticatedError("no API key: pass api_key=, or set DEPOT_API_KEY or DEPOT_API_KEY_FILE")
    return key


def _seconds(
    value: float | None,
    argument: str,
    env: Mapping[str, str],
    variable: str,
    default: float,
    *,
    positive: bool = False,
) -> float:
    """A finite number of seconds, >= 0 (``positive``: > 0, as a deadline of 0 fails every call)."""
    source = argument
    if value is None:
        raw = env.get(variable)
        if not raw:
            return default
        source = variable
        try:
            seconds = float(raw)
        except ValueError:
            seconds = math.nan
        shown: object = raw
    else:
        valid = not isinstance(value, bool) and isinstance(value, (int, float))
        seconds = float(value) if valid else math.nan
        shown = value
    in_range = seconds > 0 if positive else seconds >= 0
    if not in_range or math.isinf(seconds):
        bound = "> 0" if positive else ">= 0"
        raise InvalidArgumentError(f"{source} must be a number of seconds {bound}, not {shown!r}", field=source)
    return seconds


def _retries(value: int | None) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise InvalidArgumentError(f"retries must be an integer >= 0 or None, not {value!r}", field="retries")
    return value
