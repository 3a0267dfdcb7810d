"""Following a server-side reference listing (ResolveReferences) to its manifest.

Listing millions of objects can take minutes, longer than any deadline a
unary call should have, so the listing is a long-running operation on the
server that this module follows: progress messages about every second,
then the stored manifest. A dropped connection (UNAVAILABLE, a cut stream)
or an attempt's stream deadline re-attaches with the same request_id, so the
server goes on with the same listing instead of starting over; the retry
window counts from the last message received, so only a server that is gone
for that long ends the wait. A server that refuses a new listing because the
entity already runs its cap of them (RESOURCE_EXHAUSTED with no narrower
reason) is asked again with a slower backoff for up to ``_BUSY_WINDOW_S``: a
pipeline of many workers in one team waits its turn instead of failing.
Ctrl-C cancels the call, or the wait; the server cancels a listing nobody
follows after its grace period.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import grpc

from depot.common.v1 import common_pb2
from depot.manifest.v1 import manifest_pb2 as mpb

from ._client import Client, request_id
from ._exceptions import CommError, _error_info, from_rpc_error, is_transient

OnProgress = Callable[[int, int], None]

_BACKOFF_FIRST_S = 0.05
_BACKOFF_MAX_S = 1.0
# Waiting for a free listing slot: listings last seconds to minutes, so
# start at 0.5 s, double to 15 s, and give up after 5 minutes of refusals.
_BUSY_FIRST_S = 0.5
_BUSY_MAX_S = 15.0
_BUSY_WINDOW_S = 300.0


def resolve_references(
    client: Client,
    entity: str,
    digest_algorithm: str,
    references: list[mpb.Reference],
    on_progress: OnProgress | None = None,
) -> common_pb2.ManifestRef:
    """Lists ``references`` on the server into one stored manifest and returns its signed reference.

    ``on_progress(objects, bytes)`` is called with the running totals as
    the server reports them (about once a second).
    """
    request = mpb.ResolveReferencesRequest(
        header=mpb.ManifestHeader(entity=entity, digest_algorithm=digest_algorithm, references=references),
        request_id=request_id(),
    )
    last_heard = time.monotonic()
    delay = _BACKOFF_FIRST_S
    busy_since: float | None = None
    busy_delay = _BUSY_FIRST_S
    while True:
        call = client.manifest.ResolveReferences(request, metadata=client.auth, timeout=client.config.stream_timeout)
        try:
            for msg in call:
                last_heard = time.monotonic()
                delay = _BACKOFF_FIRST_S
                if msg.HasField("manifest"):
                    return msg.manifest
                if on_progress is not None:
                    on_progress(msg.objects_listed, msg.bytes_listed)
            raise CommError("the reference listing's stream ended without its manifest")
        except KeyboardInterrupt:
            call.cancel()
            raise
        except grpc.RpcError as e:
            if _busy(e):
                now = time.monotonic()
                busy_since = now if busy_since is None else busy_since
                pause = busy_delay * (0.5 + 0.5 * random.random())
                if now + pause - busy_since > _BUSY_WINDOW_S:
                    raise from_rpc_error(e) from None
                last_heard = now + pause  # the server answered: it is there
                time.sleep(pause)
                busy_delay = min(_BUSY_MAX_S, busy_delay * 2)
                continue
            # An attempt's own stream deadline is no verdict on the listing:
            # it goes on on the server, and re-attaching follows it further.
            again = is_transient(e) or e.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            pause = delay * (0.5 + 0.5 * random.random())
            if not again or time.monotonic() + pause - last_heard > client.retry_window:
                raise from_rpc_error(e) from None
            time.sleep(pause)
            delay = min(_BACKOFF_MAX_S, delay * 2)


def _busy(err: grpc.RpcError) -> bool:
    """The server refused a new listing for now (its per-entity or total cap of running listings).

    Other RESOURCE_EXHAUSTED answers carry a narrower reason (TOO_MANY_OBJECTS,
    STORAGE_FULL) and asking again would meet the same answer.
    """
    return err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and _error_info(err)[0] in ("", "RESOURCE_EXHAUSTED")
