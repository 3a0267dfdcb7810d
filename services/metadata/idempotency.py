"""Mutations retried with the same ``request_id`` return the first result (AIP-155).

A call claims (caller, method, request_id) by inserting a row at the start of
the transaction its work runs in, and stores the serialized response in that
row before the transaction commits. So the work and its record commit
together or not at all:

- a retry after the first call committed finds the row and gets the stored
  response, without running the work again;
- a retry while the first call is running waits on the row's unique index
  (PostgreSQL makes the second insert wait for the first transaction), then
  gets the stored response — or, if the first call failed and rolled back,
  runs the work itself;
- a call that fails leaves nothing behind, so nothing can be stuck.

Results are kept for ``RETENTION``; the GC prunes older ones.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

from depot.services.common.errors import Aborted, InvalidArgument

from .db import Database

RETENTION = timedelta(days=1)
MAX_REQUEST_ID = 128
# Older Depot committed a claim before its work; such a claim without a
# response is taken over once no call can still be running it.
LEGACY_CLAIM_TIMEOUT = timedelta(seconds=60)


class Idempotency:
    def __init__(self, db: Database):
        self._db = db

    async def once(
        self,
        caller_id: int,
        method: str,
        request_id: str,
        work: Callable[[], Awaitable[bytes]],
    ) -> bytes:
        """Runs ``work`` unless this request_id already ran; returns the stored bytes.

        ``work`` must do its queries through the same ``Database`` so that
        they join this transaction.
        """
        if not request_id:
            return await work()
        if len(request_id) > MAX_REQUEST_ID:
            raise InvalidArgument(f"request_id is longer than {MAX_REQUEST_ID} characters", field="request_id")
        key = (caller_id, method, request_id)
        async with self._db.transaction() as conn:
            claimed = await conn.fetchval(
                """
                INSERT INTO idempotency (caller_id, method, request_id) VALUES ($1, $2, $3)
                ON CONFLICT (caller_id, method, request_id) DO UPDATE
                    SET create_time = now(), response = NULL
                    -- A record past the retention window counts as gone; so does
                    -- a claim without a response once it is older than any call,
                    -- which only Depot before 2026-11 (claims committed outside
                    -- the work's transaction) can have left.
                    WHERE idempotency.create_time < now() - $4::interval
                       OR (idempotency.response IS NULL AND idempotency.create_time < now() - $5::interval)
                RETURNING true
                """,
                *key,
                RETENTION,
                LEGACY_CLAIM_TIMEOUT,
            )
            if not claimed:
                # Committed by the first call (this statement sees its commit).
                stored = await conn.fetchval(
                    "SELECT response FROM idempotency WHERE caller_id = $1 AND method = $2 AND request_id = $3",
                    *key,
                )
                if stored is None:  # a legacy claim still running (rolling upgrade)
                    raise Aborted("the first call with this request_id is still running; retry", field="request_id")
                return bytes(stored)
            result = await work()
            await conn.execute(
                "UPDATE idempotency SET response = $4 WHERE caller_id = $1 AND method = $2 AND request_id = $3",
                *key,
                result,
            )
            return result
