"""The SDK's exceptions: one tree, chosen by the server's status and reason.

DepotError
├── CommError                    the service could not be reached (UNAVAILABLE after the
│                                retry window, a deadline)
├── UnauthenticatedError         missing, malformed or revoked API key
├── PermissionDeniedError        the key's user lacks the role
│   └── TTLAdminsOnlyError       the team lets only admins set TTLs
├── InvalidArgumentError         bad input; ``field`` names it (also a ValueError)
├── NotFoundError                (also a LookupError)
│   └── EntryNotFoundError       no such path in an artifact (also a KeyError, as in W&B)
├── AlreadyExistsError
├── FailedPreconditionError
│   ├── TypeMismatchError        an artifact name logged with another type
│   ├── LastAdminError           the change would leave a team without an admin
│   └── DigestMismatchError      bytes that do not hash to their claimed digest
├── ResourceExhaustedError
│   └── TooManyObjectsError      a reference lists more than max_objects
└── AbortedError                 a conflict; retrying may succeed

Errors of the checks the SDK shares with the services (entry paths, in
``depot.services.common``) become these at the SDK's edge, in
:func:`service_errors`: a user catches one tree, whatever raised.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import grpc
from google.rpc import error_details_pb2, status_pb2

from depot.services.common import errors as _service


class DepotError(Exception):
    """Base class of every error the SDK raises about a Depot call."""

    def __init__(self, message: str, *, reason: str = "", field: str = ""):
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.field = field


class CommError(DepotError):
    """The service could not be reached or did not answer in time."""


class UnauthenticatedError(DepotError):
    """The API key is missing, malformed or revoked."""


class PermissionDeniedError(DepotError):
    """The caller has no role that allows the call."""


class InvalidArgumentError(DepotError, ValueError):
    """The request was malformed; ``field`` names the offending field."""


class NotFoundError(DepotError, LookupError):
    """The named resource does not exist (or is not visible to the caller)."""


class EntryNotFoundError(NotFoundError, KeyError):
    """An artifact has no entry at the path asked for.

    Also a ``KeyError``, which is what ``wandb.Artifact.get_entry`` raises.
    """

    def __str__(self) -> str:
        # KeyError's own __str__ would print the message's repr, quotes included.
        return self.message


class AlreadyExistsError(DepotError):
    """The resource to create exists already."""


class FailedPreconditionError(DepotError):
    """The system is not in a state that allows the call."""


class TypeMismatchError(FailedPreconditionError):
    """An artifact name exists with another type, or a registry does not accept the type."""


class LastAdminError(FailedPreconditionError):
    """Removing or demoting this member would leave the team with no admin."""


class TTLAdminsOnlyError(PermissionDeniedError):
    """The team's policy lets only admins set TTLs."""


class DigestMismatchError(FailedPreconditionError):
    """Bytes do not hash to the digest claimed for them."""


class ResourceExhaustedError(DepotError):
    """A limit was reached."""


class TooManyObjectsError(ResourceExhaustedError):
    """A reference holds more objects than its ``max_objects``."""


class AbortedError(DepotError):
    """A concurrent conflict; the call may be retried."""


_BY_CODE: dict[grpc.StatusCode, type[DepotError]] = {
    grpc.StatusCode.UNAVAILABLE: CommError,
    grpc.StatusCode.DEADLINE_EXCEEDED: CommError,
    grpc.StatusCode.UNAUTHENTICATED: UnauthenticatedError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExistsError,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPreconditionError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhaustedError,
    grpc.StatusCode.ABORTED: AbortedError,
}
_BY_REASON: dict[str, type[DepotError]] = {
    "TYPE_MISMATCH": TypeMismatchError,
    "TYPE_NOT_ACCEPTED": TypeMismatchError,
    "LAST_ADMIN": LastAdminError,
    "TTL_ADMINS_ONLY": TTLAdminsOnlyError,
    "DIGEST_MISMATCH": DigestMismatchError,
    "TOO_MANY_OBJECTS": TooManyObjectsError,
}


def _error_info(err: grpc.RpcError) -> tuple[str, str]:
    for key, value in err.trailing_metadata() or ():  # type: ignore[attr-defined]
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                info = error_details_pb2.ErrorInfo()
                if detail.Unpack(info):
                    return info.reason, info.metadata.get("field", "")
    return "", ""


def from_rpc_error(err: grpc.RpcError) -> DepotError:
    code = err.code()  # type: ignore[attr-defined]
    reason, field = _error_info(err)
    cls = _BY_REASON.get(reason) or _BY_CODE.get(code, DepotError)
    message = err.details() or code.name  # type: ignore[attr-defined]
    return cls(message, reason=reason, field=field)


# Reasons of an UNAVAILABLE the server sends only after retrying itself for
# its own bound (S3 failing a listing for the stall timeout): an SDK retry
# would repeat all of that and hide the cause behind the caller's deadline.
_RETRIED_BY_SERVER = frozenset({"S3_UNAVAILABLE"})
# What grpc reports for a call whose connection dropped mid-stream, with
# UNKNOWN on some paths ("Stream removed (recvmsg:Connection reset by peer)").
_STREAM_CUT = "Stream removed"


def is_transient(err: grpc.RpcError) -> bool:
    """Whether the same call, sent again, may succeed once the server is back.

    UNAVAILABLE (the server is down, restarting, or lost its database for a
    moment; a stream cut by a dropped connection) and ABORTED (a conflict, or
    an upload closed idle with nothing stored) are. DEADLINE_EXCEEDED is
    not: either the caller's own deadline ran out, which bounds the call,
    or the server's statement timeout did, and the same statement would
    run as long again; retrying it only multiplies load on a struggling
    server. Safe only for idempotent calls, which every SDK call is.
    """
    code = err.code()  # type: ignore[attr-defined]
    if code == grpc.StatusCode.UNAVAILABLE:
        return _error_info(err)[0] not in _RETRIED_BY_SERVER
    if code == grpc.StatusCode.ABORTED:
        return True
    return code == grpc.StatusCode.UNKNOWN and (err.details() or "").startswith(_STREAM_CUT)  # type: ignore[attr-defined]


# Most specific first: the first isinstance match wins.
_BY_SERVICE_ERROR: tuple[tuple[type[_service.DepotError], type[DepotError]], ...] = (
    (_service.TooManyObjects, TooManyObjectsError),
    (_service.InvalidArgument, InvalidArgumentError),
    (_service.NotFound, NotFoundError),
    (_service.AlreadyExists, AlreadyExistsError),
    (_service.FailedPrecondition, FailedPreconditionError),
    (_service.PermissionDenied, PermissionDeniedError),
    (_service.Unauthenticated, UnauthenticatedError),
    (_service.ResourceExhausted, ResourceExhaustedError),
    (_service.Aborted, AbortedError),
    (_service.Unavailable, CommError),
)


def from_service_error(err: _service.DepotError) -> DepotError:
    """The SDK exception for an error of the code the SDK shares with the services."""
    cls = _BY_REASON.get(err.reason)
    if cls is None:
        cls = next((sdk for svc, sdk in _BY_SERVICE_ERROR if isinstance(err, svc)), DepotError)
    return cls(err.message, reason=err.reason, field=err.field or "")


@contextlib.contextmanager
def service_errors() -> Iterator[None]:
    """Re-raises an error of ``depot.services.common`` as the matching SDK exception.

    The one place the services' exception types stop: everything the SDK
    calls from there runs inside this.
    """
    try:
        yield
    except _service.DepotError as e:
        raise from_service_error(e) from None
