"""Every transient database condition is UNAVAILABLE (the SDK retries it), never INTERNAL.

The exceptions are the ones asyncpg raised while PostgreSQL stopped, started,
crashed or froze under a real server (tests/metadata/test_postgres_restart.py
drives them end to end); here each is checked on its own.
"""

from __future__ import annotations

import errno

import asyncpg
import botocore.exceptions
import grpc
import pytest

from depot.services.common.status import to_status

TRANSIENT = [
    asyncpg.CannotConnectNowError("the database system is shutting down"),  # 57P03
    asyncpg.CannotConnectNowError("the database system is starting up"),
    asyncpg.AdminShutdownError("terminating connection due to administrator command"),  # 57P01
    asyncpg.CrashShutdownError("terminating connection because of crash of another server process"),  # 57P02
    asyncpg.IdleSessionTimeoutError("terminating connection due to idle-session timeout"),  # 57P05
    asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),  # 08003
    asyncpg.ConnectionFailureError("connection failure"),  # 08006
    asyncpg.TooManyConnectionsError("sorry, too many clients already"),  # 53300
    asyncpg.OutOfMemoryError("out of memory"),  # 53200
    asyncpg.ReadOnlySQLTransactionError("cannot execute UPDATE in a read-only transaction"),  # 25006, failover
    asyncpg.InternalClientError("cannot switch to state 12; another operation (2) is in progress"),
    asyncpg.OutdatedSchemaCacheError("cached statement plan is invalid"),
    asyncpg.InterfaceError("cannot call Transaction.rollback(): the underlying connection is closed"),
    TimeoutError(),  # asyncpg's connect, pool and command timeouts (db.py)
    ConnectionRefusedError(111, "Connection refused"),
]


@pytest.mark.parametrize("exc", TRANSIENT, ids=lambda e: type(e).__name__)
def test_transient_database_errors_are_unavailable(exc: BaseException) -> None:
    code, message, reason, _ = to_status(exc)
    assert (code, reason) == (grpc.StatusCode.UNAVAILABLE, "UNAVAILABLE")
    assert message


def test_statement_timeout_is_deadline_exceeded_not_retried() -> None:
    code, message, _, _ = to_status(asyncpg.QueryCanceledError("canceling statement due to statement timeout"))
    assert code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "statement timeout" in message


def test_database_disk_full_is_resource_exhausted_not_retried() -> None:
    code, message, _, _ = to_status(asyncpg.DiskFullError("could not extend file: No space left on device"))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "disk full" in message


def test_a_real_server_fault_stays_internal() -> None:
    code, _, _, _ = to_status(asyncpg.InternalServerError("could not open relation"))  # XX000: a bug, not a blip
    assert code == grpc.StatusCode.INTERNAL


def test_a_lock_wait_past_lock_timeout_is_aborted_and_retried() -> None:
    code, _, reason, _ = to_status(asyncpg.LockNotAvailableError("canceling statement due to lock timeout"))
    assert (code, reason) == (grpc.StatusCode.ABORTED, "ABORTED")


PERMANENT = [
    # asyncpg refusing our own query argument: the same on every retry.
    asyncpg.exceptions._base.DataError("invalid input for query argument $1: 'x' (an integer is required)"),
    OSError(errno.EIO, "Input/output error"),
    OSError(errno.ENAMETOOLONG, "File name too long"),
    IsADirectoryError(errno.EISDIR, "Is a directory"),
]


@pytest.mark.parametrize("exc", PERMANENT, ids=lambda e: type(e).__name__ + str(getattr(e, "errno", "")))
def test_errors_a_retry_cannot_outlive_are_not_unavailable(exc: BaseException) -> None:
    # UNAVAILABLE would have the SDK resend for its whole retry window.
    code, _, _, _ = to_status(exc)
    assert code == grpc.StatusCode.INTERNAL


def _s3_error(code: str, http: int) -> botocore.exceptions.ClientError:
    response = {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": http}}
    return botocore.exceptions.ClientError(response, "PutObject")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (_s3_error("SlowDown", 503), grpc.StatusCode.UNAVAILABLE),
        (_s3_error("InternalError", 500), grpc.StatusCode.UNAVAILABLE),
        (botocore.exceptions.EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), grpc.StatusCode.UNAVAILABLE),
        (_s3_error("AccessDenied", 403), grpc.StatusCode.FAILED_PRECONDITION),
        (_s3_error("MalformedXML", 400), grpc.StatusCode.INTERNAL),
    ],
    ids=lambda v: getattr(v, "name", type(v).__name__),
)
def test_blob_store_s3_errors_are_retried_only_when_transient(exc: BaseException, expected: grpc.StatusCode) -> None:
    # An S3 blip on an upload was INTERNAL (never retried) before.
    assert to_status(exc)[0] == expected
