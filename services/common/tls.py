"""TLS for the services: what they serve with and what they call each other with.

A server is given a certificate and key (DEPOT_TLS_CERT, DEPOT_TLS_KEY);
with a client CA (DEPOT_TLS_CLIENT_CA) it also requires every caller to
present a certificate that CA signed (mutual TLS between services).

A service's own calls to another service (the manifest service asking
metadata about access) verify the peer against DEPOT_TLS_CA, or the system
roots when it is unset, and present DEPOT_TLS_CLIENT_CERT/KEY — or, when
those are unset, the service's own serving certificate, so one certificate
per service is enough for mutual TLS. DEPOT_TLS_SERVER_NAME is the name to
check in the peer's certificate when the address does not carry it (the
all-in-one calls itself on 127.0.0.1).

Plaintext between services only when chosen: a ``grpc://`` address, or
DEPOT_INSECURE=1, or a loopback address. A bare ``host:port`` of another
host with no TLS settings is refused at startup, because the manifest
service forwards its callers' API keys on that channel (the SDK refuses the
same).

Files are read once, when the configuration is built: a missing or
unreadable file is a one-line error naming the variable, at startup, not a
handshake failure at the first call.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from depot.core.addresses import is_loopback, split_scheme

log = logging.getLogger(__name__)

SERVER_VARS = ("DEPOT_TLS_CERT", "DEPOT_TLS_KEY", "DEPOT_TLS_CLIENT_CA")
CLIENT_VARS = ("DEPOT_TLS_CA", "DEPOT_TLS_CLIENT_CERT", "DEPOT_TLS_CLIENT_KEY", "DEPOT_TLS_SERVER_NAME")


@dataclass(frozen=True)
class ServerTLS:
    """A server's certificate chain and key, and the CA its callers' certificates must chain to."""

    cert_file: Path
    key_file: Path
    client_ca_file: Path | None
    cert_chain: bytes = field(repr=False)
    private_key: bytes = field(repr=False)
    client_ca: bytes | None = field(repr=False)

    def credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials(
            [(self.private_key, self.cert_chain)],
            root_certificates=self.client_ca,
            require_client_auth=self.client_ca is not None,
        )

    def to_env(self) -> dict[str, str]:
        values = {
            "DEPOT_TLS_CERT": str(self.cert_file),
            "DEPOT_TLS_KEY": str(self.key_file),
            "DEPOT_TLS_CLIENT_CA": str(self.client_ca_file or ""),
        }
        return {k: v for k, v in values.items() if v}


@dataclass(frozen=True)
class ClientTLS:
    """How a service verifies the services it calls, and what it presents to them."""

    ca_file: Path | None
    client_cert_file: Path | None
    client_key_file: Path | None
    server_name: str | None
    # None: the system roots.
    ca: bytes | None = field(repr=False)
    client_cert: bytes | None = field(repr=False)
    client_key: bytes | None = field(repr=False)

    def to_env(self) -> dict[str, str]:
        values = {
            "DEPOT_TLS_CA": str(self.ca_file or ""),
            "DEPOT_TLS_CLIENT_CERT": str(self.client_cert_file or ""),
            "DEPOT_TLS_CLIENT_KEY": str(self.client_key_file or ""),
            "DEPOT_TLS_SERVER_NAME": self.server_name or "",
        }
        return {k: v for k, v in values.items() if v}


def read_pem(variable: str, value: str, what: str) -> tuple[Path, bytes]:
    """The file a variable names, read now; ValueError with the variable's name otherwise."""
    path = Path(value).expanduser()
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ValueError(f"{variable}: cannot read {what} {str(path)!r}: {e.strerror}") from None
    if b"-----BEGIN " not in data:
        raise ValueError(f"{variable}: {str(path)!r} is not a PEM file ({what})")
    return path, data


def server_tls_from_env(env: Mapping[str, str]) -> ServerTLS | None:
    cert, key, client_ca = (env.get(v) or "" for v in SERVER_VARS)
    if not (cert or key or client_ca):
        return None
    if not (cert and key):
        missing = "DEPOT_TLS_KEY" if cert else "DEPOT_TLS_CERT"
        raise ValueError(f"{missing} is required with DEPOT_TLS_CERT/DEPOT_TLS_KEY/DEPOT_TLS_CLIENT_CA")
    cert_file, cert_chain = read_pem("DEPOT_TLS_CERT", cert, "certificate chain")
    key_file, private_key = read_pem("DEPOT_TLS_KEY", key, "private key")
    ca_file, ca = read_pem("DEPOT_TLS_CLIENT_CA", client_ca, "client CA") if client_ca else (None, None)
    return ServerTLS(cert_file, key_file, ca_file, cert_chain, private_key, ca)


def client_tls_from_env(env: Mapping[str, str]) -> ClientTLS | None:
    ca, cert, key, server_name = (env.get(v) or "" for v in CLIENT_VARS)
    if not (ca or cert or key or server_name):
        return None
    if bool(cert) != bool(key):
        missing = "DEPOT_TLS_CLIENT_KEY" if cert else "DEPOT_TLS_CLIENT_CERT"
        raise ValueError(f"{missing} is required with the other (a client certificate needs its key)")
    ca_file, ca_pem = read_pem("DEPOT_TLS_CA", ca, "CA") if ca else (None, None)
    cert_file, cert_pem = read_pem("DEPOT_TLS_CLIENT_CERT", cert, "client certificate") if cert else (None, None)
    key_file, key_pem = read_pem("DEPOT_TLS_CLIENT_KEY", key, "client key") if key else (None, None)
    return ClientTLS(ca_file, cert_file, key_file, server_name or None, ca_pem, cert_pem, key_pem)


def plaintext_target(
    address: str,
    client: ClientTLS | None,
    server: ServerTLS | None,
    *,
    to_self: bool = False,
    insecure: bool = False,
) -> str | None:
    """The ``host:port`` to call in plaintext, or None for TLS.

    Raises ValueError (one line, for startup) when plaintext would carry
    callers' API keys off this machine without being asked for: a bare
    address to another host with no TLS settings.
    """
    target, scheme_tls = split_scheme(address)
    if to_self:
        use_tls = server is not None
    else:
        use_tls = scheme_tls if scheme_tls is not None else (client is not None or server is not None)
    if use_tls:
        return None
    if scheme_tls is None and not to_self and not insecure and not is_loopback(target):
        raise ValueError(
            f"DEPOT_METADATA_ADDRESS={address}: refusing to forward API keys in plaintext to {target}; "
            f"use grpcs://{target} with DEPOT_TLS_CA (TLS), or grpc://{target} or DEPOT_INSECURE=1 "
            "if this network is trusted"
        )
    return target


def internal_channel(
    address: str,
    client: ClientTLS | None,
    server: ServerTLS | None,
    *,
    to_self: bool = False,
    insecure: bool = False,
) -> grpc.aio.Channel:
    """A channel from one service to another.

    TLS when the address says ``grpcs://``, or when TLS is configured at all
    (a service that serves TLS speaks it to its peers too). Plaintext for
    ``grpc://``, or a bare address on loopback with no TLS settings; a bare
    address to another host with none is refused (callers' API keys are
    forwarded on this channel) unless ``insecure`` (DEPOT_INSECURE). ``to_self``: the
    all-in-one calling its own port, which speaks TLS exactly when it
    serves TLS, and can trust its own (self-signed) certificate when no CA
    is given.
    """
    # Here, not at import: telemetry reads config, which reads this module.
    from .telemetry import client_interceptors

    # Client spans and the caller's traceparent, when an exporter is configured.
    interceptors = client_interceptors()
    plain = plaintext_target(address, client, server, to_self=to_self, insecure=insecure)
    if plain is not None:
        if not to_self and not is_loopback(plain):
            log.warning("calling %s in plaintext, as configured: API keys cross the network in clear", plain)
        return grpc.aio.insecure_channel(plain, interceptors=interceptors)
    target, _ = split_scheme(address)
    roots = client.ca if client is not None else None
    if roots is None and to_self and server is not None:
        roots = server.cert_chain
    cert, key = (client.client_cert, client.client_key) if client is not None else (None, None)
    if cert is None and server is not None:
        cert, key = server.cert_chain, server.private_key
    credentials = grpc.ssl_channel_credentials(root_certificates=roots, private_key=key, certificate_chain=cert)
    options = []
    if client is not None and client.server_name:
        options.append(("grpc.ssl_target_name_override", client.server_name))
    return grpc.aio.secure_channel(target, credentials, options=options, interceptors=interceptors)
