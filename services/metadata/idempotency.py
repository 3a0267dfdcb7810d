"""Mutations retried with the same ``request_id`` return the first result (AIP-155).

The first call claims (caller, method, request_id) by inserting a row with no
response yet, does the work, then stores the serialized response. A
concurrent retry finds the claim and waits for the response instead of
doing the work again. A failed call removes its claim, so a retry runs anew.
No connection is held while the work runs: the work needs the pool itself.
Results are kept for ``RETENTION``; the GC prunes older ones.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta

import asyncpg

from depot.services.common.errors import Aborted, InvalidArgument

RETENTION = timedelta(days=1)
MAX_REQUEST_ID = 128
# How long a retry waits for the first call before answering ABORTED (retryable).
WAIT_S = 60.0


class Idempotency:
    def __init__(self, pool: asyncpg.Pool):
        self._pool = pool

    async def once(
        self,
        caller_id: int,
        method: str,
        request_id: str,
        work: Callable[[], Awaitable[bytes]],
    ) -> bytes:
        """Runs ``work`` unless this request_id already ran; returns the stored bytes."""
        if not request_id:
            return await work()
        if len(request_id) > MAX_REQUEST_ID:
            raise InvalidArgument(f"request_id is longer than {MAX_REQUEST_ID} characters", field="request_id")
        key = (caller_id, method, request_id)
        claimed = await self._pool.fetchval(
            """
            INSERT INTO idempotency (caller_id, method, request_id) VALUES ($1, $2, $3)
            ON CONFLICT (caller_id, method, request_id) DO UPDATE
                SET create_time = now(), response = NULL
                WHERE idempotency.create_time < now() - $4::interval
                   -- A claim whose first call died (no response after WAIT_S) is taken over.
                   OR (idempotency.response IS NULL
                       AND idempotency.create_time < now() - $5::interval)
            RETURNING true
            """,
            *key,
            RETENTION,
            timedelta(seconds=WAIT_S),
        )
        if not claimed:
            return await self._wait(*key)
        try:
            result = await work()
        except BaseException:
            await self._pool.execute(
                "DELETE FROM idempotency WHERE caller_id = $1 AND method = $2 AND request_id = $3",
                *key,
            )
            raise
        await self._pool.execute(
            """
            UPDATE idempotency SET response = $4
            WHERE caller_id = $1 AND method = $2 AND request_id = $3
            """,
            *key,
            result,
        )
        return result

    async def _wait(self, caller_id: int, method: str, request_id: str) -> bytes:
        deadline = time.monotonic() + WAIT_S
        delay = 0.01
        while time.monotonic() < deadline:
            row = await self._pool.fetchrow(
                """
                SELECT response FROM idempotency
                WHERE caller_id = $1 AND method = $2 AND request_id = $3
                """,
                caller_id,
                method,
                request_id,
            )
            if row is None:
                raise Aborted(
                    "the first call with this request_id failed; retrying runs it again",
                    field="request_id",
                )
            if row["response"] is not None:
                return bytes(row["response"])
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.2)
        raise Aborted("the first call with this request_id is still running", field="request_id")
