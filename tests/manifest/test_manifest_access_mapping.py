"""The manifest service's mapping of metadata's CheckAccess failures, code by code
(the real-service case is tests/manifest/test_manifest_metadata_failures.py)."""

from __future__ import annotations

import grpc
import pytest
from grpc.aio import AioRpcError, Metadata

from depot.services.common import errors
from depot.services.common.status import _details, to_status
from depot.services.manifest.access import _caller_error

C = grpc.StatusCode


def _metadata_error(code: grpc.StatusCode, exc: errors.DepotError) -> AioRpcError:
    details = _details(code, exc.message, errors.ErrorReason.Name(exc.reason), exc.field)
    trailer = Metadata(("grpc-status-details-bin", details))
    return AioRpcError(code, Metadata(), trailer, details=exc.message)


@pytest.mark.parametrize(
    ("code", "exc"),
    [
        (C.INVALID_ARGUMENT, errors.InvalidArgument("bad", field="entity")),
        (C.NOT_FOUND, errors.NotFound("no entity", field="entity")),
        (C.PERMISSION_DENIED, errors.PermissionDenied("no")),
        (C.UNAUTHENTICATED, errors.Unauthenticated("revoked")),
        (C.FAILED_PRECONDITION, errors.FailedPrecondition("entity disabled", reason=errors.ErrorReason.TYPE_MISMATCH)),
        (C.RESOURCE_EXHAUSTED, errors.ResourceExhausted("too much", reason=errors.ErrorReason.STORAGE_FULL)),
    ],
)
def test_caller_statuses_pass_through_with_their_reason(code: grpc.StatusCode, exc: errors.DepotError) -> None:
    mapped = _caller_error(_metadata_error(code, exc))
    out_code, message, reason, _field = to_status(mapped)
    assert (out_code, message, reason) == (code, exc.message, errors.ErrorReason.Name(exc.reason))


@pytest.mark.parametrize("code", [C.UNAVAILABLE, C.DEADLINE_EXCEEDED])
def test_transport_failures_are_unavailable(code: grpc.StatusCode) -> None:
    assert to_status(_caller_error(AioRpcError(code, Metadata(), Metadata(), details="x")))[0] == C.UNAVAILABLE


@pytest.mark.parametrize("code", [C.INTERNAL, C.UNKNOWN, C.DATA_LOSS, C.UNIMPLEMENTED])
def test_failures_behind_the_answer_are_internal(code: grpc.StatusCode) -> None:
    assert to_status(_caller_error(AioRpcError(code, Metadata(), Metadata(), details="x")))[0] == C.INTERNAL
