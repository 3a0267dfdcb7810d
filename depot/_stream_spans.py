"""Client spans and trace context for the SDK's server-streaming calls (``depot[otel]`` only).

The maintained ``opentelemetry-instrumentation-grpc`` traces the SDK's unary
and request-streaming calls (``depot._client._traced``), but for a call that
streams its answer it hands back a plain generator in place of gRPC's call
object: without the ``cancel()`` the manifest readers and the reference
listing call, and running its span's context across the caller's
``yield``\\ s. This interceptor does the same job for those calls and keeps
the call object: a client span under the caller's current span, its W3C
context (``traceparent``) in the call's metadata via
``opentelemetry.propagate.inject``, ended with the stream's status.

Imported only where OpenTelemetry is installed; nothing here runs while the
process has no tracer provider (``recording`` says so per call).
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import Any

import grpc
from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from ._exceptions import _LOCAL_CANCEL


def _failed(call: grpc.Call) -> bool:
    """Whether the stream ended in a failure. The SDK's own cancel (a caller
    that stops iterating early: files() in a loop with a break) is not one;
    a CANCELLED from the server's side is (the SDK sends such a call again)."""
    code = call.code()
    if code == grpc.StatusCode.OK:
        return False
    return not (code == grpc.StatusCode.CANCELLED and (call.details() or "").startswith(_LOCAL_CANCEL))


class _CallDetails(
    collections.namedtuple(
        "_CallDetails", ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression")
    ),
    grpc.ClientCallDetails,
):
    # grpc.ClientCallDetails is an interface without a constructor; gRPC's
    # own interceptors subclass a namedtuple the same way.
    pass


class AnswerStreamSpans(grpc.UnaryStreamClientInterceptor):
    """A client span per server-streaming call, its context sent as ``traceparent``."""

    def __init__(self, recording: Callable[[], bool]) -> None:
        self._recording = recording
        self._tracer = trace.get_tracer("depot")

    def intercept_unary_stream(
        self,
        continuation: Callable[[grpc.ClientCallDetails, Any], Any],
        client_call_details: grpc.ClientCallDetails,
        request: Any,
    ) -> Any:
        if not self._recording():
            return continuation(client_call_details, request)
        method = client_call_details.method
        service, _, name = method.lstrip("/").partition("/")
        span = self._tracer.start_span(
            method,
            kind=SpanKind.CLIENT,
            attributes={"rpc.system": "grpc", "rpc.service": service, "rpc.method": name},
        )
        carrier: dict[str, str] = {}
        propagate.inject(carrier, context=trace.set_span_in_context(span))
        # gRPC takes lower-case metadata keys only; a custom propagator's may not be.
        sent = (*(client_call_details.metadata or ()), *((k.lower(), v) for k, v in carrier.items()))
        details = _CallDetails(
            method,
            client_call_details.timeout,
            sent,
            client_call_details.credentials,
            client_call_details.wait_for_ready,
            client_call_details.compression,
        )
        try:
            call = continuation(details, request)
        except BaseException:
            span.end()
            raise
        # Called on gRPC's thread once the stream ends (at once if it already has).
        call.add_done_callback(lambda done: _end(span, done))
        return call


def _end(span: Span, call: grpc.Call) -> None:
    code = call.code()
    span.set_attribute("rpc.grpc.status_code", code.value[0])
    if _failed(call):
        span.set_status(Status(StatusCode.ERROR))
    span.end()
