"""Undecodable requests answer INVALID_ARGUMENT, not UNKNOWN.

grpc calls a method's request deserializer before any handler (and so before
authentication) runs; a ``DecodeError`` there — garbage bytes, invalid UTF-8
in a string field — surfaced as ``UNKNOWN "Unexpected DecodeError"``. The
edge interceptor (interceptor.py) wraps every method's deserializer with
:func:`checked`, so that a request that does not parse becomes an
:class:`Undecodable` marker, and :func:`refuse` (or :func:`checked_stream`,
per message of a client stream) raises its ``InvalidArgument`` first thing,
which becomes the same ErrorInfo trailer as every other error (status.py).

Nothing else is checked here, before authentication and for every call:
walking a parsed request's strings for NUL cost a 1000-entry PutManifest
30x its decode time and let an unauthenticated 2 MB request stall the event
loop for over a second. NUL and other characters PostgreSQL cannot store
are refused where fields are known (``validate.py``) and, for any string
that still reaches the database, where errors become statuses
(``status.py``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from google.protobuf.message import DecodeError

from . import errors


class Undecodable:
    """What the wrapped deserializer returns for a request it refused."""

    __slots__ = ("error",)

    def __init__(self, error: errors.InvalidArgument):
        self.error = error


def checked(deserializer: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    """``deserializer`` returning an :class:`Undecodable` instead of raising."""

    def deserialize(data: bytes) -> Any:
        try:
            return deserializer(data)
        except DecodeError as e:
            return Undecodable(errors.InvalidArgument(f"the request is not a valid message of this RPC: {e}"))
        except Exception:  # noqa: BLE001 - any parser failure is the caller's bytes
            return Undecodable(errors.InvalidArgument("the request is not a valid message of this RPC"))

    return deserialize


def refuse(request: Any) -> None:
    """Raises the refusal of a request the checked deserializer could not parse."""
    if isinstance(request, Undecodable):
        raise request.error


async def checked_stream(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
    """A client stream whose first undecodable message raises its refusal."""
    async for request in requests:
        refuse(request)
        yield request
