"""The connection to a Depot deployment: channels, stubs, auth and retries."""

from __future__ import annotations

import itertools
import os
import random
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import grpc

from depot.gc.v1 import gc_pb2_grpc
from depot.manifest.v1 import manifest_pb2_grpc
from depot.metadata.v1 import metadata_pb2_grpc

from ._exceptions import InvalidArgumentError, UnauthenticatedError, from_rpc_error, is_transient
from ._tls import resolve

T = TypeVar("T")

DEFAULT_ADDRESS = "127.0.0.1:50051"
# How long a call keeps retrying after its first transient failure: covers a
# server restart (0.35 s with the database up; a few seconds when the
# embedded PostgreSQL starts too) and a database failover, with room to spare.
DEFAULT_RETRY_WINDOW_S = 30.0
# Backoff between attempts: the first retry is quick (an ABORTED conflict
# or a dropped connection is usually gone at once), then it doubles to at
# most 0.5 s. Jittered, so writers that failed together do not retry together.
_BACKOFF_FIRST_S = 0.05
_BACKOFF_MAX_S = 0.5
_OPTIONS = [
    ("grpc.max_receive_message_length", 16 * 1024 * 1024),
    ("grpc.max_send_message_length", 16 * 1024 * 1024),
    # gRPC's default reconnect backoff (1 s, x1.6, up to 120 s) kept a
    # channel blind to a restarted server for 1.5-2.1 s after it was back
    # in 0.35 s, and the retries ran out meanwhile. Reconnecting to a
    # refused port costs nothing; a restarted server is seen within ~1 s.
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
]


def _read_key(api_key: str | None) -> str:
    key = api_key or os.environ.get("DEPOT_API_KEY")
    if not key and os.environ.get("DEPOT_API_KEY_FILE"):
        key = Path(os.environ["DEPOT_API_KEY_FILE"]).read_text().strip()
    if not key:
        raise UnauthenticatedError("no API key: pass api_key=, or set DEPOT_API_KEY or DEPOT_API_KEY_FILE")
    return key


def _retry_window(value: float | None) -> float:
    if value is None:
        raw = os.environ.get("DEPOT_RETRY_WINDOW")
        try:
            value = float(raw) if raw else DEFAULT_RETRY_WINDOW_S
        except ValueError:
            raise InvalidArgumentError(
                f"DEPOT_RETRY_WINDOW must be seconds, not {raw!r}", field="retry_window"
            ) from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < float("inf"):
        raise InvalidArgumentError(
            f"retry_window must be a number of seconds >= 0, not {value!r}", field="retry_window"
        )
    return float(value)


class Client:
    """Stubs for the services, with the API key attached to every call.

    ``address`` serves metadata; ``manifest_address`` (default: the same)
    serves manifests and blobs, as in the all-in-one server. Either is
    ``host:port``, ``grpcs://host:port`` (TLS) or ``grpc://host:port``.

    TLS: ``tls=True`` (or a ``grpcs://`` address, or a CA from ``tls_ca`` /
    ``DEPOT_TLS_CA``) verifies the server against that CA or the system
    roots. Plaintext is refused for a non-loopback host, because the API
    key would cross the network in clear, unless ``insecure=True`` or
    ``DEPOT_INSECURE=1``. See ``depot._tls`` for every setting.

    Retries: a call that fails transiently (the server restarting, a
    dropped connection, a conflict) is tried again, with jittered backoff,
    for up to ``retry_window`` seconds (default ``DEPOT_RETRY_WINDOW``, else
    30) after its first failure; a
    server that is gone for longer is a :class:`CommError` then.
    ``retries`` also caps the number of retries (``0``: none), which
    tests that want the first error at once use.
    """

    def __init__(
        self,
        address: str | None = None,
        api_key: str | None = None,
        *,
        manifest_address: str | None = None,
        retry_window: float | None = None,
        retries: int | None = None,
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
        # One stub per resource family of the metadata service (one channel).
        self.artifacts = metadata_pb2_grpc.ArtifactServiceStub(self._channel)
        self.registries = metadata_pb2_grpc.RegistryServiceStub(self._channel)
        self.access = metadata_pb2_grpc.AccessServiceStub(self._channel)
        self.lineage = metadata_pb2_grpc.LineageServiceStub(self._channel)
        self.manifest = manifest_pb2_grpc.ManifestServiceStub(self._mchannel)
        self.gc = gc_pb2_grpc.GcServiceStub(self._channel)
        self.retry_window = _retry_window(retry_window)
        self.retries = retries

    @property
    def auth(self) -> tuple[tuple[str, str], ...]:
        return self._metadata

    def call(self, method: Callable[..., T], request: Any, *, timeout: float = 60) -> T:
        """A unary call with auth, retried over transient failures (see :meth:`retrying`).

        Mutations carry a ``request_id`` set once by the caller, so a retry
        after a lost answer returns the first result instead of redoing it.
        """
        return self.retrying(lambda: method(request, metadata=self._metadata, timeout=timeout))

    def upload(self, method: Callable[..., T], requests: Callable[[], Iterator[Any]], *, timeout: float = 3600) -> T:
        """A client-streaming call, sent again from the start after a transient failure.

        ``requests`` makes a fresh request iterator for each attempt. Only
        for idempotent uploads: a blob is stored under its digest and a
        manifest is content-addressed, so an upload cut by a server restart
        (whose partial bytes the server drops) is simply sent again.
        """
        return self.retrying(lambda: method(requests(), metadata=self._metadata, timeout=timeout))

    def read(
        self,
        method: Callable[..., Iterator[Any]],
        request: Any,
        consume: Callable[[Iterator[Any]], T],
        *,
        timeout: float = 3600,
    ) -> T:
        """A server-streaming call read whole by ``consume``, started over after a transient failure.

        Neither ReadBlob nor ReadManifest can resume from a position, and
        the chunks of a blob read from S3 need not split the same way twice:
        so ``consume`` sees the whole stream again and must start over
        (open its output anew, reset what it collected).
        """
        return self.retrying(lambda: consume(method(request, metadata=self._metadata, timeout=timeout)))

    def stream(self, method: Callable[..., Iterator[Any]], request: Any, *, timeout: float = 3600) -> Iterator[Any]:
        """A server-streaming call's messages; retried only until the first one arrives.

        After that a transient failure is raised: the caller holds part of
        the stream. Use :meth:`read` to have the whole stream retried.
        """
        it = self.retrying(lambda: _first(method(request, metadata=self._metadata, timeout=timeout)))
        try:
            yield from it
        except grpc.RpcError as e:
            raise from_rpc_error(e) from None

    def retrying(self, attempt: Callable[[], T]) -> T:
        """Runs ``attempt`` until it succeeds, fails for good, or the retry window closes.

        What is retried is :func:`~depot._exceptions.is_transient`'s to
        say: a server restarting or a connection cut, never a deadline.
        Every call the SDK makes is idempotent (a ``request_id`` on
        mutations, content addresses on uploads), so a retry never does the
        work twice.

        The budget is time, not a count: retries go on for
        ``retry_window`` seconds after the first failure, enough for a
        restart, so gRPC's reconnect backoff can no longer use them up.
        """
        first_failure: float | None = None
        delay = _BACKOFF_FIRST_S
        for tries in itertools.count():
            try:
                return attempt()
            except grpc.RpcError as e:
                now = time.monotonic()
                if first_failure is None:
                    first_failure = now
                pause = delay * (0.5 + 0.5 * random.random())
                if (
                    not is_transient(e)
                    or (self.retries is not None and tries >= self.retries)
                    or now + pause - first_failure > self.retry_window
                ):
                    raise from_rpc_error(e) from None
                time.sleep(pause)
                delay = min(_BACKOFF_MAX_S, delay * 2)
        raise AssertionError("unreachable")

    def close(self) -> None:
        self._channel.close()
        if self._mchannel is not self._channel:
            self._mchannel.close()


def _first(it: Iterator[T]) -> Iterator[T]:
    """``it`` with its first message already received (errors before it raise here)."""
    try:
        head = next(it)
    except StopIteration:
        return iter(())
    return itertools.chain((head,), it)


def request_id() -> str:
    """A new idempotency key: set once per logical mutation, kept across its retries."""
    return uuid.uuid4().hex
