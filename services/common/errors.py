"""Domain errors shared by every Depot service.

Domain code raises these; it never imports grpc. ``status.py`` is the one
place that turns them into gRPC status codes. Each error carries a stable
machine-readable ``reason`` (AIP-193 ErrorInfo.reason), a value of the
``ErrorReason`` enum of protos/depot/common/v1/common.proto (re-exported
here, so a raise site names ``ErrorReason.X``), and, for bad input, the
``field`` it is about.
"""

from __future__ import annotations

from typing import TypeAlias

from depot.common.v1.common_pb2 import ErrorReason as ErrorReason

# A value of ErrorReason (an int at runtime; its name goes on the wire).
Reason: TypeAlias = ErrorReason.ValueType


class DepotError(Exception):
    """Base of every error a Depot service reports to its caller."""

    reason: Reason = ErrorReason.DEPOT_ERROR

    def __init__(self, message: str, *, field: str | None = None, reason: Reason | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        if reason is not None:
            self.reason = reason


class InvalidArgument(DepotError):
    reason = ErrorReason.INVALID_ARGUMENT


class NotFound(DepotError):
    reason = ErrorReason.NOT_FOUND


class AlreadyExists(DepotError):
    reason = ErrorReason.ALREADY_EXISTS


class FailedPrecondition(DepotError):
    reason = ErrorReason.FAILED_PRECONDITION


class PermissionDenied(DepotError):
    reason = ErrorReason.PERMISSION_DENIED


class Unauthenticated(DepotError):
    reason = ErrorReason.UNAUTHENTICATED


class ResourceExhausted(DepotError):
    reason = ErrorReason.RESOURCE_EXHAUSTED


class Aborted(DepotError):
    """A retryable conflict (serialization failure, lost race)."""

    reason = ErrorReason.ABORTED


class Unavailable(DepotError):
    """A backend (PostgreSQL, S3) could not be reached; retryable."""

    reason = ErrorReason.UNAVAILABLE


class TooManyObjects(ResourceExhausted):
    """A reference lists more objects than its ``max_objects`` allows."""

    reason = ErrorReason.TOO_MANY_OBJECTS

    def __init__(self, uri: str, limit: int):
        super().__init__(
            f"reference {uri} has more than max_objects={limit} objects; "
            f"listing stopped after {limit} and more remain (raise max_objects or narrow the prefix)",
            field="max_objects",
        )
        self.uri = uri
        self.limit = limit


class StorageFull(ResourceExhausted):
    """The blob store's disk is full or over quota (ENOSPC, EDQUOT, EFBIG):
    retrying does not help until an operator frees space."""

    reason = ErrorReason.STORAGE_FULL


class StorageNotWritable(FailedPrecondition):
    """The blob store's disk refuses writes (EROFS, EACCES, EPERM): an
    operator must fix the mount or its permissions."""

    reason = ErrorReason.STORAGE_NOT_WRITABLE


class IdleTimeout(Aborted):
    """A client stream sent nothing for the server's idle timeout and was
    closed; nothing of it was stored, so sending it again is safe."""

    reason = ErrorReason.IDLE_TIMEOUT


class S3Unavailable(Unavailable):
    """S3 kept failing a reference listing after the server's own retries.

    Raised when no request to the bucket succeeded for the stall timeout, or
    one request failed past its budget; ``code`` is the last S3 error code
    (``InternalError``, ``SlowDown``, ``ClientConnectorError``, ...). The
    server has already retried, so a client retrying at once only repeats
    the listing: the reason lets it tell this apart from a server restart.
    """

    reason = ErrorReason.S3_UNAVAILABLE

    def __init__(self, message: str, *, bucket: str, code: str):
        super().__init__(message, field="uri")
        self.bucket = bucket
        self.code = code
