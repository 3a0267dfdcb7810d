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

from depot.core import blobwire
from depot.gc.v1 import gc_pb2_grpc
from depot.manifest.v1 import manifest_pb2 as mpb
from depot.manifest.v1 import manifest_pb2_grpc
from depot.metadata.v1 import metadata_pb2_grpc

from ._config import ConnectionConfig
from ._exceptions import InvalidArgumentError, from_rpc_error, is_transient

T = TypeVar("T")

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
_MANIFEST_SERVICE = "/depot.manifest.v1.ManifestService/"
_CHUNK_KEY = blobwire.key(mpb.UploadBlobRequest.CHUNK_FIELD_NUMBER)
_DATA_KEY = blobwire.key(mpb.BlobChunk.DATA_FIELD_NUMBER)


def _upload_part(part: mpb.UploadBlobRequest | bytes) -> bytes:
    # A chunk travels as its bytes, framed by hand (see depot.core.blobwire).
    return blobwire.frame(_CHUNK_KEY, part) if isinstance(part, bytes) else part.SerializeToString()


def _blob_chunk(message: bytes) -> memoryview:
    data = blobwire.unframe(_DATA_KEY, message)
    return memoryview(mpb.BlobChunk.FromString(message).data) if data is None else data


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

    Deadlines: a unary call gets ``call_timeout`` seconds (default
    ``DEPOT_CALL_TIMEOUT``, else 60), a stream (a blob or manifest moving)
    ``stream_timeout`` (``DEPOT_STREAM_TIMEOUT``, else 3600), per attempt.

    Every setting lands in one frozen :class:`~depot._config.ConnectionConfig`
    (``client.config``) built from these arguments and the environment,
    where a bad value is one error naming its variable; or pass one whole
    as ``config=``.
    """

    def __init__(
        self,
        address: str | None = None,
        api_key: str | None = None,
        *,
        manifest_address: str | None = None,
        retry_window: float | None = None,
        retries: int | None = None,
        call_timeout: float | None = None,
        stream_timeout: float | None = None,
        tls: bool | None = None,
        tls_ca: str | Path | None = None,
        insecure: bool | None = None,
        config: ConnectionConfig | None = None,
    ):
        if config is None:
            config = ConnectionConfig.from_env(
                os.environ,
                address=address,
                api_key=api_key,
                manifest_address=manifest_address,
                retry_window=retry_window,
                retries=retries,
                call_timeout=call_timeout,
                stream_timeout=stream_timeout,
                tls=tls,
                tls_ca=tls_ca,
                insecure=insecure,
            )
        elif any(
            v is not None
            for v in (
                address,
                api_key,
                manifest_address,
                retry_window,
                retries,
                call_timeout,
                stream_timeout,
                tls,
                tls_ca,
                insecure,
            )
        ):
            raise InvalidArgumentError("pass config= or the settings it holds, not both", field="config")
        self.config = config
        self._metadata = (("authorization", f"Bearer {config.api_key}"),)
        self._channel = _traced(config.metadata_target.channel(_OPTIONS))
        self._mchannel = (
            self._channel
            if config.manifest_address == config.address
            else _traced(config.manifest_target.channel(_OPTIONS))
        )
        # One stub per resource family of the metadata service (one channel).
        self.artifacts = metadata_pb2_grpc.ArtifactServiceStub(self._channel)
        self.registries = metadata_pb2_grpc.RegistryServiceStub(self._channel)
        self.access = metadata_pb2_grpc.AccessServiceStub(self._channel)
        self.lineage = metadata_pb2_grpc.LineageServiceStub(self._channel)
        self._bind_manifest(self._mchannel)
        self.gc = gc_pb2_grpc.GcServiceStub(self._channel)

    def _bind_manifest(self, channel: grpc.Channel) -> None:
        """The manifest service's calls over ``channel`` (tests pass an intercepted one)."""
        self.manifest = manifest_pb2_grpc.ManifestServiceStub(channel)
        # UploadBlob and ReadBlob with blob chunks as plain bytes, without
        # protobuf's copies: UploadBlob takes the header message then each
        # chunk's bytes, ReadBlob yields each chunk's bytes.
        self.upload_blob = channel.stream_unary(
            _MANIFEST_SERVICE + "UploadBlob", request_serializer=_upload_part, response_deserializer=mpb.Blob.FromString
        )
        self.read_blob = channel.unary_stream(
            _MANIFEST_SERVICE + "ReadBlob",
            request_serializer=mpb.ReadBlobRequest.SerializeToString,
            response_deserializer=_blob_chunk,
        )

    @property
    def address(self) -> str:
        return self.config.address

    @property
    def manifest_address(self) -> str:
        return self.config.manifest_address

    @property
    def retry_window(self) -> float:
        return self.config.retry_window

    @property
    def retries(self) -> int | None:
        return self.config.retries

    @property
    def auth(self) -> tuple[tuple[str, str], ...]:
        return self._metadata

    def call(self, method: Callable[..., T], request: Any, *, timeout: float | None = None) -> T:
        """A unary call with auth, retried over transient failures (see :meth:`retrying`).

        Mutations carry a ``request_id`` set once by the caller, so a retry
        after a lost answer returns the first result instead of redoing it.
        """
        deadline = self.config.call_timeout if timeout is None else timeout
        return self.retrying(lambda: method(request, metadata=self._metadata, timeout=deadline))

    def upload(
        self, method: Callable[..., T], requests: Callable[[], Iterator[Any]], *, timeout: float | None = None
    ) -> T:
        """A client-streaming call, sent again from the start after a transient failure.

        ``requests`` makes a fresh request iterator for each attempt. Only
        for idempotent uploads: a blob is stored under its digest and a
        manifest is content-addressed, so an upload cut by a server restart
        (whose partial bytes the server drops) is simply sent again.
        """
        deadline = self.config.stream_timeout if timeout is None else timeout
        return self.retrying(lambda: method(requests(), metadata=self._metadata, timeout=deadline))

    def read(
        self,
        method: Callable[..., Iterator[Any]],
        request: Any,
        consume: Callable[[Iterator[Any]], T],
        *,
        timeout: float | None = None,
    ) -> T:
        """A server-streaming call read whole by ``consume``, started over after a transient failure.

        Neither ReadBlob nor ReadManifest can resume from a position, and
        the chunks of a blob read from S3 need not split the same way twice:
        so ``consume`` sees the whole stream again and must start over
        (open its output anew, reset what it collected).
        """
        deadline = self.config.stream_timeout if timeout is None else timeout
        return self.retrying(lambda: consume(method(request, metadata=self._metadata, timeout=deadline)))

    def stream(self, method: Callable[..., Iterator[T]], request: Any, *, timeout: float | None = None) -> Iterator[T]:
        """A server-streaming call's messages; retried only until the first one arrives.

        After that a transient failure is raised: the caller holds part of
        the stream. Use :meth:`read` to have the whole stream retried.
        """
        deadline = self.config.stream_timeout if timeout is None else timeout
        it = self.retrying(lambda: _first(method(request, metadata=self._metadata, timeout=deadline)))
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


def _traced(channel: grpc.Channel) -> grpc.Channel:
    """``channel``, sending the caller's trace context (W3C ``traceparent``) on each call.

    Only where ``opentelemetry-instrumentation-grpc`` is installed (``pip
    install depot[otel]``; the lean SDK does not need it), and only once the
    process has a tracer provider (checked per call, so one set up after the
    client counts): each call is then a client span of the user's current
    span, and the services' spans join that trace. Until then a call costs
    one type check. Unary and request-streaming calls (UploadBlob,
    CreateManifest) go through the instrumentation's interceptor; calls
    that stream their answer (ReadManifest, ReadBlob, ResolveReferences)
    through ours (``depot._stream_spans``: the instrumentation would hand
    back a generator without the ``cancel()`` the SDK's readers call). The
    SDK has no bidirectional call.
    """
    try:
        from opentelemetry import trace
        from opentelemetry.instrumentation.grpc import client_interceptor
        from opentelemetry.instrumentation.grpc.grpcext import intercept_channel

        from ._stream_spans import AnswerStreamSpans
    except ImportError:
        return channel

    def recording() -> bool:
        # No provider set: nothing would be recorded or sent.
        return not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)

    def unary_or_upload(info: Any) -> bool:
        answer_stream = getattr(info, "is_server_stream", False) and not getattr(info, "is_client_stream", False)
        return not answer_stream and recording()

    # The instrumentation's functions carry no annotations.
    interceptor = client_interceptor(filter_=unary_or_upload)  # type: ignore[no-untyped-call]
    traced: grpc.Channel = intercept_channel(channel, interceptor)  # type: ignore[no-untyped-call]
    return grpc.intercept_channel(traced, AnswerStreamSpans(recording))


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
