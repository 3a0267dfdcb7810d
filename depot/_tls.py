"""How the SDK reaches Depot: over TLS, or in plaintext only when that is safe or asked for.

An address is ``host:port``, ``grpcs://host:port`` (TLS) or
``grpc://host:port`` (plaintext). TLS is used when the address says
``grpcs://``, when ``tls=True``, or when a CA or client certificate is
configured (``tls_ca=`` / ``DEPOT_TLS_CA``, ``DEPOT_TLS_CLIENT_CERT``) for a
bare ``host:port``. The server's certificate is verified against that CA,
else the system's CA bundle (grpc's built-in roots when the system has
none). ``DEPOT_TLS_CLIENT_CERT`` and ``DEPOT_TLS_CLIENT_KEY`` add a client
certificate for servers that require one; ``DEPOT_TLS_SERVER_NAME`` is the
name to check when the address is an IP the certificate does not name.

Plaintext sends the API key in clear, so it is refused for any host other
than loopback (``localhost``, ``127.0.0.0/8``, ``::1``) unless
``insecure=True`` or ``DEPOT_INSECURE=1`` says it is meant.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import grpc

from depot.core import addresses
from depot.core.addresses import is_loopback

from ._exceptions import InvalidArgumentError
from ._rules import sdk_rule

_parse_flag = sdk_rule(addresses.parse_flag)


@dataclass(frozen=True)
class Target:
    """Where to connect (``host:port``) and with which credentials (None: plaintext)."""

    address: str
    credentials: grpc.ChannelCredentials | None
    options: tuple[tuple[str, str], ...] = ()

    def channel(self, options: list[tuple[str, int]]) -> grpc.Channel:
        all_options = [*options, *self.options]
        if self.credentials is None:
            return grpc.insecure_channel(self.address, options=all_options)
        return grpc.secure_channel(self.address, self.credentials, options=all_options)


def split_scheme(address: str, field: str = "address") -> tuple[str, bool | None]:
    """``host:port`` and whether the address chose TLS, plaintext or neither.

    Stricter than the services: a scheme other than ``grpcs://``/``grpc://``
    is a typo the SDK reports before the key could go anywhere.
    """
    target, tls = addresses.split_scheme(address)
    if tls is None and "://" in address:
        raise InvalidArgumentError(
            f"{field} {address!r}: the scheme must be grpcs:// (TLS) or grpc:// (plaintext)", field=field
        )
    return target, tls


def _read(path: str | Path, name: str) -> bytes:
    try:
        data = Path(path).expanduser().read_bytes()
    except OSError as e:
        raise InvalidArgumentError(f"{name}: cannot read {str(path)!r}: {e.strerror}", field=name) from None
    if b"-----BEGIN " not in data:
        raise InvalidArgumentError(f"{name}: {str(path)!r} is not a PEM file", field=name)
    return data


def _system_roots() -> bytes | None:
    """The system's CA bundle, so a CA installed there is trusted as it is by
    curl or requests; None lets grpc use its own bundled roots."""
    cafile = ssl.get_default_verify_paths().cafile
    if cafile and Path(cafile).is_file():
        return Path(cafile).read_bytes()
    return None


def resolve(
    address: str,
    *,
    tls: bool | None,
    tls_ca: str | Path | None,
    insecure: bool | None,
    env: Mapping[str, str],
    field: str = "address",
) -> Target:
    """The connection settings for ``address`` (see the module docstring); ``field`` names where it came from."""
    target, scheme_tls = split_scheme(address, field)
    if tls is not None and scheme_tls is not None and tls != scheme_tls:
        raise InvalidArgumentError(f"address {address!r} contradicts tls={tls}", field="tls")
    ca_path, ca_name = (tls_ca, "tls_ca") if tls_ca else (env.get("DEPOT_TLS_CA") or None, "DEPOT_TLS_CA")
    cert_path, key_path = env.get("DEPOT_TLS_CLIENT_CERT") or None, env.get("DEPOT_TLS_CLIENT_KEY") or None
    if tls is None:
        tls = scheme_tls if scheme_tls is not None else bool(ca_path or cert_path)
    if not tls:
        if insecure is None:
            insecure = _parse_flag("DEPOT_INSECURE", env.get("DEPOT_INSECURE", ""))
        if not insecure and not is_loopback(target):
            raise InvalidArgumentError(
                f"{field}: refusing to send the API key in plaintext to {target}: use grpcs://{target} (TLS), "
                "or pass insecure=True / set DEPOT_INSECURE=1 if this network is trusted",
                field=field,
            )
        return Target(target, None)
    roots = _read(ca_path, ca_name) if ca_path else _system_roots()
    if bool(cert_path) != bool(key_path):
        raise InvalidArgumentError(
            "DEPOT_TLS_CLIENT_CERT and DEPOT_TLS_CLIENT_KEY go together", field="DEPOT_TLS_CLIENT_CERT"
        )
    cert = _read(cert_path, "DEPOT_TLS_CLIENT_CERT") if cert_path else None
    key = _read(key_path, "DEPOT_TLS_CLIENT_KEY") if key_path else None
    credentials = grpc.ssl_channel_credentials(root_certificates=roots, private_key=key, certificate_chain=cert)
    server_name = env.get("DEPOT_TLS_SERVER_NAME")
    options = (("grpc.ssl_target_name_override", server_name),) if server_name else ()
    return Target(target, credentials, options)
