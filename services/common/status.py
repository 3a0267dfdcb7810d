"""The one place where domain errors become gRPC status codes.

The edge interceptor (interceptor.py) calls :func:`abort` with whatever a
handler raised; domain code raises the exceptions of ``errors.py`` and never
touches grpc. Every status carries an
AIP-193 ``ErrorInfo`` with a stable reason (and the field, for bad input) in
the ``grpc-status-details-bin`` trailer, so clients can branch on it.
"""

from __future__ import annotations

import errno
import logging
from typing import Any, NoReturn

import asyncpg
import botocore.exceptions
import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

from . import errors
from .errors import ErrorReason, Reason

log = logging.getLogger(__name__)

DOMAIN = "depot.dev"

# An error's message goes out twice, percent-encoded in grpc-message and
# inside the grpc-status-details-bin trailer, and the client refuses
# trailers past its 8 KiB metadata limit (RESOURCE_EXHAUSTED "received
# metadata size exceeds soft limit", hiding the real answer). Messages echo
# the caller's values, so they are cut at this many UTF-8 bytes: at most 3x
# that percent-encoded plus 4/3x in base64, well under the limit.
MAX_MESSAGE_BYTES = 1000
_ELLIPSIS = "…"

# PostgreSQL cannot store these characters in text (NUL) or jsonb (\u0000):
# the value was the caller's, so the answer is theirs to fix. Fields whose
# values are known are checked before any query (validate.py); this covers
# every other string that reaches the database.
_UNSTORABLE = (asyncpg.CharacterNotInRepertoireError, asyncpg.UntranslatableCharacterError)
_UNSTORABLE_MESSAGE = "a text field contains a character PostgreSQL cannot store, such as NUL"

# A database stopping, starting, crashing, failing over or out of
# connections: the same call succeeds once it is back, so UNAVAILABLE
# (retried by the SDK), never INTERNAL. By SQLSTATE class: 08 connection
# exception, 57P operator intervention (admin/crash shutdown, "the database
# system is starting up / shutting down"), 53 insufficient resources (too
# many connections, out of memory; disk full is handled apart), 25006 a
# standby after failover; plus asyncpg's client-side errors on a connection
# that broke mid-protocol ("cannot switch to state ...", a stale statement
# cache after a restart).
_DB_TRANSIENT = (
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,
    asyncpg.InsufficientResourcesError,
    asyncpg.ReadOnlySQLTransactionError,
    asyncpg.InternalClientError,
    asyncpg.InterfaceError,
)

# asyncpg's client-side refusals (a query argument of the wrong type, a bad
# client setting): our bug, the same on every retry, so not "unavailable".
_DB_CLIENT_BUG = (asyncpg.exceptions._base.DataError, asyncpg.exceptions._base.ClientConfigurationError)

_STATEMENT_TIMEOUT = "the database statement ran past its statement timeout"

# OS errors that a retry can outlive: a peer or backend that dropped or
# refused a connection, a timeout, a staged file a sweep removed under a
# stalled call. Any other OSError (EIO, ENAMETOOLONG, EISDIR, ...) is the
# same on every retry and is INTERNAL, so the SDK does not resend for 30 s.
_OS_TRANSIENT = frozenset(
    {
        errno.ECONNRESET,
        errno.ECONNREFUSED,
        errno.ECONNABORTED,
        errno.ETIMEDOUT,
        errno.EPIPE,
        errno.EAGAIN,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.ENOENT,
    }
)

# The S3 blob store (aiobotocore) failing mid-call: a connection dropped,
# refused or timed out, or S3 answering 5xx/SlowDown, clears on a retry.
_S3_TRANSIENT = (
    botocore.exceptions.EndpointConnectionError,
    botocore.exceptions.ConnectionClosedError,
    botocore.exceptions.ConnectTimeoutError,
    botocore.exceptions.ReadTimeoutError,
)

_DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
_NOT_WRITABLE = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})

# Most specific first: TooManyObjects is a ResourceExhausted, and so on.
_CODES: list[tuple[type[errors.DepotError], grpc.StatusCode]] = [
    (errors.InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.NotFound, grpc.StatusCode.NOT_FOUND),
    (errors.AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
    (errors.FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
    (errors.Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (errors.ResourceExhausted, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.Aborted, grpc.StatusCode.ABORTED),
    (errors.Unavailable, grpc.StatusCode.UNAVAILABLE),
]


def to_status(exc: BaseException) -> tuple[grpc.StatusCode, str, str, str | None]:
    """(code, message, reason, field) for an exception raised inside a handler; the
    reason is its ErrorReason's name, as ErrorInfo.reason carries it."""
    code, message, reason, field = _status(exc)
    return code, message, ErrorReason.Name(reason), field


def _status(exc: BaseException) -> tuple[grpc.StatusCode, str, Reason, str | None]:
    if isinstance(exc, errors.DepotError):
        for cls, code in _CODES:
            if isinstance(exc, cls):
                return code, exc.message, exc.reason, exc.field
        return grpc.StatusCode.INTERNAL, exc.message, exc.reason, exc.field
    if isinstance(exc, _UNSTORABLE):
        return grpc.StatusCode.INVALID_ARGUMENT, _UNSTORABLE_MESSAGE, ErrorReason.INVALID_ARGUMENT, None
    if isinstance(exc, asyncpg.InvalidTextRepresentationError):
        # A caller's string cast to a typed column ("invalid input syntax for
        # type uuid: ..."): the text is the caller's own value, so it is echoed.
        return grpc.StatusCode.INVALID_ARGUMENT, f"invalid value: {exc}", ErrorReason.INVALID_ARGUMENT, None
    if isinstance(exc, asyncpg.UniqueViolationError):
        return grpc.StatusCode.ALREADY_EXISTS, "resource already exists", ErrorReason.ALREADY_EXISTS, None
    if isinstance(exc, (asyncpg.SerializationError, asyncpg.DeadlockDetectedError)):
        return grpc.StatusCode.ABORTED, "concurrent update conflict; retry", ErrorReason.ABORTED, None
    if isinstance(exc, asyncpg.LockNotAvailableError):
        # lock_timeout (db.LOCK_TIMEOUT_S): the row's holder ends soon; retry.
        return grpc.StatusCode.ABORTED, "waited too long for a row lock; retry", ErrorReason.ABORTED, None
    if isinstance(exc, asyncpg.QueryCanceledError):
        # statement_timeout (db.QUERY_TIMEOUT_S): the same statement would
        # likely run as long again, so not "retry".
        return _hidden(exc, grpc.StatusCode.DEADLINE_EXCEEDED, _STATEMENT_TIMEOUT, ErrorReason.DEADLINE_EXCEEDED)
    if isinstance(exc, asyncpg.DiskFullError):
        # Retrying cannot help until an operator frees space.
        return _hidden(exc, grpc.StatusCode.RESOURCE_EXHAUSTED, "database disk full", ErrorReason.RESOURCE_EXHAUSTED)
    if isinstance(exc, TimeoutError):
        # Mostly asyncpg's connect, pool or command timeout (db.py): a
        # database that did not answer. Without its own message: it has none.
        return grpc.StatusCode.UNAVAILABLE, "backend did not answer in time", ErrorReason.UNAVAILABLE, None
    if isinstance(exc, _DB_CLIENT_BUG):
        log.exception("database client refused a query", exc_info=exc)
        return grpc.StatusCode.INTERNAL, "internal error", ErrorReason.INTERNAL, None
    if isinstance(exc, _DB_TRANSIENT):
        return _hidden(exc, grpc.StatusCode.UNAVAILABLE, "database unavailable", ErrorReason.UNAVAILABLE)
    # A full or read-only disk is not "try again"; the blob store raises
    # StorageFull / StorageNotWritable itself, this catches any write it missed.
    # Their text (errno and path on the blob disk) is kept, as the store's own
    # errors keep it: what an operator acts on, and no database or S3 detail.
    if isinstance(exc, OSError) and exc.errno in _DISK_FULL:
        return grpc.StatusCode.RESOURCE_EXHAUSTED, f"storage full: {exc}", ErrorReason.STORAGE_FULL, None
    if isinstance(exc, OSError) and exc.errno in _NOT_WRITABLE:
        return (
            grpc.StatusCode.FAILED_PRECONDITION,
            f"storage not writable: {exc}",
            ErrorReason.STORAGE_NOT_WRITABLE,
            None,
        )
    if isinstance(exc, _S3_TRANSIENT):
        return _hidden(exc, grpc.StatusCode.UNAVAILABLE, "blob store unavailable", ErrorReason.UNAVAILABLE)
    if isinstance(exc, botocore.exceptions.ClientError):
        return _s3_status(exc)
    if isinstance(exc, ConnectionError) or (isinstance(exc, OSError) and exc.errno in _OS_TRANSIENT):
        return _hidden(exc, grpc.StatusCode.UNAVAILABLE, "backend unavailable", ErrorReason.UNAVAILABLE)
    return grpc.StatusCode.INTERNAL, "internal error", ErrorReason.INTERNAL, None


def _hidden(
    exc: BaseException, code: grpc.StatusCode, message: str, reason: Reason
) -> tuple[grpc.StatusCode, str, Reason, str | None]:
    """A backend's failure answered with a fixed message per category.

    The exception's own text is the database's or the blob store's (host
    names, SQL, connection details): it goes to the log, where the trace id
    (telemetry's log filter) joins it to the call, and never to the caller.
    """
    log.warning("%s: %s: %s", message, type(exc).__name__, exc)
    return code, message, reason, None


def _s3_status(exc: botocore.exceptions.ClientError) -> tuple[grpc.StatusCode, str, Reason, str | None]:
    """An S3 error answer from the blob store: 5xx and throttling are
    UNAVAILABLE (retried); a refusal is the operator's to fix, not the
    caller's to retry; anything else is a bug (INTERNAL)."""
    code = str(exc.response.get("Error", {}).get("Code", ""))
    http = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    if http >= 500 or code in ("SlowDown", "RequestTimeout", "ServiceUnavailable", "InternalError"):
        return grpc.StatusCode.UNAVAILABLE, f"blob store unavailable: S3 {code or http}", ErrorReason.UNAVAILABLE, None
    if http == 403 or code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
        message = f"the blob store refused Depot's credentials: S3 {code or http}"
        return grpc.StatusCode.FAILED_PRECONDITION, message, ErrorReason.STORAGE_NOT_WRITABLE, None
    log.error("unexpected S3 answer from the blob store: %s", exc)
    return grpc.StatusCode.INTERNAL, "internal error", ErrorReason.INTERNAL, None


def bounded(message: str, limit: int = MAX_MESSAGE_BYTES) -> str:
    """``message`` cut to at most ``limit`` UTF-8 bytes (on a character boundary), marked with an ellipsis."""
    raw = message.encode("utf-8", "replace")
    if len(raw) <= limit:
        return message
    return raw[: limit - len(_ELLIPSIS.encode())].decode("utf-8", "ignore") + _ELLIPSIS


def _details(code: grpc.StatusCode, message: str, reason: str, field: str | None) -> bytes:
    info = error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN)
    if field:
        info.metadata["field"] = field
    detail = any_pb2.Any()
    detail.Pack(info)
    status = status_pb2.Status(code=code.value[0], message=message, details=[detail])
    return status.SerializeToString()


async def abort(context: grpc.aio.ServicerContext[Any, Any], exc: BaseException) -> NoReturn:
    """Ends the call with ``exc``'s status and its ErrorInfo trailer (the edge interceptor calls it)."""
    code, message, reason, field = to_status(exc)
    message = bounded(message)
    if field is not None:
        field = bounded(field, 200)
    if code == grpc.StatusCode.INTERNAL:
        log.exception("internal error in RPC", exc_info=exc)
    context.set_trailing_metadata((("grpc-status-details-bin", _details(code, message, reason, field)),))
    await context.abort(code, message)
