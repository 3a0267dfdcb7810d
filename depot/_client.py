"""The connection to a Depot deployment: channels, stubs, auth and retries."""

from __future__ import annotations

import os
import random
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import grpc

from depot.gc.v1 import gc_pb2_grpc
from depot.manifest.v1 import manifest_pb2_grpc
from depot.metadata.v1 import metadata_pb2_grpc

from ._exceptions import UnauthenticatedError, from_rpc_error
from ._tls import resolve

T = TypeVar("T")

DEFAULT_ADDRESS = "127.0.0.1:50051"
_RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED)
_OPTIONS = [
    ("grpc.max_receive_message_length", 16 * 1024 * 1024),
    ("grpc.max_send_message_length", 16 * 1024 * 1024),
]


def _read_key(api_key: str | None) -> str:
    key = api_key or os.environ.get("DEPOT_API_KEY")
    if not key and os.environ.get("DEPOT_API_KEY_FILE"):
        key = Path(os.environ["DEPOT_API_KEY_FILE"]).read_text().strip()
    if not key:
        raise UnauthenticatedError("no API key: pass api_key=, or set DEPOT_API_KEY or DEPOT_API_KEY_FILE")
    return key


class Client:
    """Stubs for the three services, with the API key attached to every call.

    ``address`` serves metadata; ``manifest_address`` (default: the same)
    serves manifests and blobs, as in the all-in-one server. Either is
    ``host:port``, ``grpcs://host:port`` (TLS) or ``grpc://host:port``.

    TLS: ``tls=True`` (or a ``grpcs://`` address, or a CA from ``tls_ca`` /
    ``DEPOT_TLS_CA``) verifies the server against that CA or the system
    roots. Plaintext is refused for a non-loopback host, because the API
    key would cross the network in clear, unless ``insecure=True`` or
    ``DEPOT_INSECURE=1``. See ``depot._tls`` for every setting.
    """

    def __init__(
        self,
        address: str | None = None,
        api_key: str | None = None,
        *,
        manifest_address: str | None = None,
        retries: int = 5,
        tls: bool | None = None,
        tls_ca: str | Path | None = None,
        insecure: bool | None = None,
    ):
        self.address = address or os.environ.get("DEPOT_ADDRESS", DEFAULT_ADDRESS)
        self.manifest_address = manifest_address or os.environ.get("DEPOT_MANIFEST_ADDRESS") or self.address
        # Resolved before the key is read: a refused plaintext address must
        # fail before anything could send the key.
        targets = [
            resolve(a, tls=tls, tls_ca=tls_ca, insecure=insecure, env=os.environ)
            for a in (self.address, self.manifest_address)
        ]
        self._key = _read_key(api_key)
        self._metadata = (("authorization", f"Bearer {self._key}"),)
        self._channel = targets[0].channel(_OPTIONS)
        self._mchannel = self._channel if self.manifest_address == self.address else targets[1].channel(_OPTIONS)
        self.metadata = metadata_pb2_grpc.MetadataServiceStub(self._channel)
        self.manifest = manifest_pb2_grpc.ManifestServiceStub(self._mchannel)
        self.gc = gc_pb2_grpc.GcServiceStub(self._channel)
        self.retries = retries

    @property
    def auth(self) -> tuple[tuple[str, str], ...]:
        return self._metadata

    def call(self, method: Callable[..., T], request: Any, *, timeout: float = 60) -> T:
        """A unary call with auth, retried with backoff on UNAVAILABLE/ABORTED.

        Mutations carry a ``request_id`` set once by the caller, so a retry
        after a lost answer returns the first result instead of redoing it.
        """
        for attempt in range(self.retries + 1):
            try:
                return method(request, metadata=self._metadata, timeout=timeout)
            except grpc.RpcError as e:
                if e.code() in _RETRYABLE and attempt < self.retries:  # type: ignore[attr-defined]
                    time.sleep(min(2.0, 0.05 * 2**attempt) * (0.5 + random.random()))
                    continue
                raise from_rpc_error(e) from None
        raise AssertionError("unreachable")

    def stream(self, method: Callable[..., Any], request: Any, *, timeout: float = 3600) -> Any:
        try:
            yield from method(request, metadata=self._metadata, timeout=timeout)
        except grpc.RpcError as e:
            raise from_rpc_error(e) from None

    def upload(self, method: Callable[..., T], requests: Any, *, timeout: float = 3600) -> T:
        try:
            return method(requests, metadata=self._metadata, timeout=timeout)
        except grpc.RpcError as e:
            raise from_rpc_error(e) from None

    def close(self) -> None:
        self._channel.close()
        if self._mchannel is not self._channel:
            self._mchannel.close()


def request_id() -> str:
    return uuid.uuid4().hex
