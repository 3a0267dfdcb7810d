"""Addresses of Depot's gRPC endpoints, as the SDK and the services read them.

``grpcs://host:port`` chooses TLS, ``grpc://host:port`` plaintext, and a bare
``host:port`` leaves the choice to the TLS settings. Plaintext carries API
keys in clear, so both sides allow it without being asked only to a
loopback address (``localhost``, ``127.0.0.0/8``, ``::1``, a unix socket),
and ``DEPOT_INSECURE`` is how it is asked for.
"""

from __future__ import annotations

from ipaddress import ip_address

from .errors import InvalidValue

SECURE_SCHEME = "grpcs://"
PLAIN_SCHEME = "grpc://"
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")


def split_scheme(address: str) -> tuple[str, bool | None]:
    """``host:port`` and whether the address chose TLS (``grpcs://``), plaintext
    (``grpc://``) or neither."""
    if address.startswith(SECURE_SCHEME):
        return address[len(SECURE_SCHEME) :].rstrip("/"), True
    if address.startswith(PLAIN_SCHEME):
        return address[len(PLAIN_SCHEME) :].rstrip("/"), False
    return address, None


def is_loopback(target: str) -> bool:
    """Whether a ``host:port`` (or ``unix:`` path) never leaves this machine."""
    if target.startswith(("unix:", "unix-abstract:")):
        return True
    host = target.rsplit(":", 1)[0] if target.count(":") == 1 or target.startswith("[") else target
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        ip = ip_address(host)
    except ValueError:
        return False
    # Not is_unspecified: 0.0.0.0 and :: are listening addresses, not
    # destinations, and what a connect() to them reaches is not ours to say.
    return ip.is_loopback


def parse_flag(variable: str, value: str) -> bool:
    """An on/off environment variable (``DEPOT_INSECURE``): 1/true/yes/on or 0/false/no/off/empty."""
    v = value.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise InvalidValue(f"{variable} must be 1/true/yes/on or 0/false/no/off, not {value!r}", field=variable)
