"""What every metadata servicer shares: the caller, and mutations run once per request_id.

A mutation is declared once, on its handler, with its response type::

    @mutation(pb.Run)
    async def CreateRun(self, request, context) -> pb.Run: ...

The decorator runs the handler's body at most once per ``request_id``
(idempotency.py: the record commits in the body's transaction) and answers
a retry with the stored response, parsed as that type. The idempotency key
is the handler's own name, so there is no second list of method names to
keep in step with the RPCs.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from google.protobuf.message import Message

from depot.services.common.interceptor import Callers, Context

from .access import Access, Principal
from .idempotency import Grant, Idempotency, fingerprint
from .registry_access import RegistryAccess

Req = TypeVar("Req", bound=Message)
Resp = TypeVar("Resp", bound=Message)
S = TypeVar("S", bound="Family")
Handler = Callable[[S, Req, Context], Awaitable[Resp]]


class Family:
    """Base of the servicers of one resource family (artifacts, registries, access, lineage)."""

    def __init__(
        self, callers: Callers[Principal], access: Access, idempotency: Idempotency, registry_access: RegistryAccess
    ):
        self._callers = callers
        self._access = access
        self._idem = idempotency
        self._registry_access = registry_access

    def _who(self) -> Principal:
        """The caller, authenticated by the edge interceptor before the handler ran."""
        return self._callers.get()

    async def _once(
        self,
        who: Principal,
        method: str,
        request: Message,
        response: type[Resp],
        work: Callable[[], Awaitable[Resp]],
        *,
        changes_own_access: bool,
    ) -> Resp:
        """Runs ``work`` once per ``request.request_id`` (see idempotency.py).

        The id is bound to the whole request (a fingerprint of it without the
        id), and a replay re-checks the access the first call was given —
        except for a call that changed the caller's own membership
        (``changes_own_access``): an admin who demoted or removed themselves
        lost that access by the very call being retried, and its answer holds
        nothing but their own membership.
        """
        # Every mutation's request has a request_id (AIP-155); Message does not say so.
        request_id: str = getattr(request, "request_id")  # noqa: B009
        bare = type(request)()
        bare.CopyFrom(request)
        bare.ClearField("request_id")
        if "manifest" in bare.DESCRIPTOR.fields_by_name and bare.HasField("manifest"):
            # Building the same manifest again signs a new token (it dates
            # the build): the request is the manifest it names, not its token.
            manifest = getattr(bare, "manifest")  # noqa: B009 - a ManifestRef, per the check above
            manifest.ClearField("token")
            manifest.ClearField("create_time_unix_ms")
        fresh: list[Resp] = []

        async def run() -> bytes:
            fresh.append(await work())
            return fresh[0].SerializeToString()

        async def still_holds(grant: Grant) -> bool:
            if changes_own_access:
                return True
            if grant.kind == "registry":
                role = await self._registry_access.role(who, grant.id)
            else:
                role = await self._access.role(who, grant.id)
            return role is not None and role >= grant.role

        stored = await self._idem.once(
            who.user_id, method, request_id, fingerprint(bare.SerializeToString(deterministic=True)), run, still_holds
        )
        # The stored bytes are parsed only for a retry; a first call answers
        # with the message it built.
        return fresh[0] if fresh else response.FromString(stored)


def mutation(
    response: type[Resp],
    *,
    changes_own_access: Callable[[Principal, Any], bool] | None = None,
    shown_once: str = "",
) -> Callable[[Handler[S, Req, Resp]], Handler[S, Req, Resp]]:
    """Declares a handler a mutation answering ``response``.

    ``changes_own_access(who, request)`` says when the call changes the
    caller's own access (see ``Family._once``). ``shown_once`` names a field
    of the response that is answered once and never stored (a new key's
    secret): a retry answers it empty.
    """

    def decorate(body: Handler[S, Req, Resp]) -> Handler[S, Req, Resp]:
        method = body.__name__

        @functools.wraps(body)
        async def handler(self: S, request: Req, context: Context) -> Resp:
            who = self._who()
            secret: list[Any] = []

            async def work() -> Resp:
                msg = await body(self, request, context)
                if shown_once:
                    secret.append(getattr(msg, shown_once))
                    msg.ClearField(shown_once)
                return msg

            own = changes_own_access is not None and changes_own_access(who, request)
            out = await self._once(who, method, request, response, work, changes_own_access=own)
            if secret:
                setattr(out, shown_once, secret[0])
            return out

        return handler

    return decorate
