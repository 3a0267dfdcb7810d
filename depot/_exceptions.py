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
│   ├── DigestMismatchError      bytes that do not hash to their claimed digest
│   └── ManifestExpiredError     a manifest built longer ago than half the GC's grace period
├── ResourceExhaustedError
│   └── TooManyObjectsError      a reference lists more than max_objects
├── AbortedError                 a conflict; retrying may succeed
└── UnsupportedError             a W&B call Depot does not offer; the message says why
                                 (also a NotImplementedError; raised by the SDK, never the server)

A server error's class comes from its reason (the ``ErrorReason`` enum of
protos/depot/common/v1/common.proto, sent as AIP-193 ErrorInfo.reason):
each reason maps to exactly one class (``BY_REASON``; a contract test keeps
the map and the enum equal). An error without a reason this SDK knows
(a transport failure, an older or newer server) is chosen by its status code.
"""

from __future__ import annotations

from typing import cast

import grpc
from google.rpc import error_details_pb2, status_pb2

from depot.common.v1.common_pb2 import ErrorReason


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


class ManifestExpiredError(FailedPreconditionError):
    """A version was committed with a manifest built too long ago (its blobs may
    have been collected since); log the artifact again."""


class ResourceExhaustedError(DepotError):
    """A limit was reached."""


class TooManyObjectsError(ResourceExhaustedError):
    """A reference holds more objects than its ``max_objects``."""


class AbortedError(DepotError):
    """A concurrent conflict; the call may be retried."""


class UnsupportedError(DepotError, NotImplementedError):
    """A W&B SDK call or argument Depot does not offer; the message names the reason
    (docs/wandb-compat.md lists them)."""


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
# Every ErrorReason but UNSPECIFIED, by name, to its one class.
BY_REASON: dict[str, type[DepotError]] = {
    "INVALID_ARGUMENT": InvalidArgumentError,
    "NOT_FOUND": NotFoundError,
    "ALREADY_EXISTS": AlreadyExistsError,
    "FAILED_PRECONDITION": FailedPreconditionError,
    "PERMISSION_DENIED": PermissionDeniedError,
    "UNAUTHENTICATED": UnauthenticatedError,
    "RESOURCE_EXHAUSTED": ResourceExhaustedError,
    "ABORTED": AbortedError,
    "UNAVAILABLE": CommError,
    "DEADLINE_EXCEEDED": CommError,
    "INTERNAL": DepotError,
    "DEPOT_ERROR": DepotError,
    "REQUEST_ID_REUSED": InvalidArgumentError,
    "LAST_ADMIN": LastAdminError,
    "TTL_ADMINS_ONLY": TTLAdminsOnlyError,
    "TYPE_MISMATCH": TypeMismatchError,
    "TYPE_NOT_ACCEPTED": TypeMismatchError,
    "BLOB_MISSING": FailedPreconditionError,
    "DIGEST_MISMATCH": DigestMismatchError,
    "METADATA_FAILED": DepotError,
    "TOO_MANY_OBJECTS": TooManyObjectsError,
    "STORAGE_FULL": ResourceExhaustedError,
    "STORAGE_NOT_WRITABLE": FailedPreconditionError,
    "IDLE_TIMEOUT": AbortedError,
    "S3_UNAVAILABLE": CommError,
    "MANIFEST_EXPIRED": ManifestExpiredError,
}


def _error_info(err: grpc.RpcError) -> tuple[str, str]:
    for item in err.trailing_metadata() or ():
        # A (key, value) pair at runtime (a namedtuple), whatever the stubs call it.
        key, value = cast("tuple[str, bytes]", item)
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                info = error_details_pb2.ErrorInfo()
                if detail.Unpack(info):
                    return info.reason, info.metadata.get("field", "")
    return "", ""


def from_rpc_error(err: grpc.RpcError) -> DepotError:
    code = err.code()
    reason, field = _error_info(err)
    cls = BY_REASON.get(reason) or _BY_CODE.get(code, DepotError)
    message = err.details() or code.name
    return cls(message, reason=reason, field=field)


# Reasons of an UNAVAILABLE the server sends only after retrying itself for
# its own bound (S3 failing a listing for the stall timeout): an SDK retry
# would repeat all of that and hide the cause behind the caller's deadline.
_RETRIED_BY_SERVER = frozenset({ErrorReason.Name(ErrorReason.S3_UNAVAILABLE)})
# What grpc reports for a call whose connection dropped mid-stream, with
# UNKNOWN on some paths ("Stream removed (recvmsg:Connection reset by peer)").
_STREAM_CUT = "Stream removed"
# What grpc reports for a call this process cancelled (call.cancel()), and
# for one whose channel this process closed under it.
_LOCAL_CANCEL = ("Locally cancelled", "Channel closed")


def is_transient(err: grpc.RpcError) -> bool:
    """Whether the same call, sent again, may succeed once the server is back.

    UNAVAILABLE (the server is down, restarting, or lost its database for a
    moment; a stream cut by a dropped connection) and ABORTED (a conflict, or
    an upload closed idle with nothing stored) are. So is CANCELLED unless
    this process cancelled the call (``call.cancel()``: Ctrl-C, a reader
    closed early) or closed its channel: then the server's side did, and
    gRPC does that to calls a busy server has not taken up within
    ``grpc.server_max_unrequested_time_in_server`` (30 s), before any
    handler ran. DEADLINE_EXCEEDED is
    not: either the caller's own deadline ran out, which bounds the call,
    or the server's statement timeout did, and the same statement would
    run as long again; retrying it only multiplies load on a struggling
    server. Safe only for idempotent calls, which every SDK call is.
    """
    code = err.code()
    if code == grpc.StatusCode.UNAVAILABLE:
        return _error_info(err)[0] not in _RETRIED_BY_SERVER
    if code == grpc.StatusCode.ABORTED:
        return True
    if code == grpc.StatusCode.CANCELLED:
        return not (err.details() or "").startswith(_LOCAL_CANCEL)
    return code == grpc.StatusCode.UNKNOWN and (err.details() or "").startswith(_STREAM_CUT)
