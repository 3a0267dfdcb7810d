"""Mutations retried with the same ``request_id`` return the first result (AIP-155).

The first call's serialized response is stored per (caller, method,
request_id). A session advisory lock on that triple makes a concurrent retry
wait for the first call and then read its result, so the work happens once.
Results are kept for ``RETENTION``; the GC prunes older ones.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from datetime import timedelta

import asyncpg

from depot.services.common.errors import InvalidArgument

RETENTION = timedelta(days=1)
MAX_REQUEST_ID = 128


def _lock_key(caller_id: int, method: str, request_id: str) -> int:
    h = hashlib.blake2b(f"{caller_id}\0{method}\0{request_id}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "big", signed=True)


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
            raise InvalidArgument(
                f"request_id is longer than {MAX_REQUEST_ID} characters", field="request_id"
            )
        key = _lock_key(caller_id, method, request_id)
        async with self._pool.acquire() as conn:
            await conn.execute("SELECT pg_advisory_lock($1)", key)
            try:
                stored = await conn.fetchval(
                    """
                    SELECT response FROM idempotency
                    WHERE caller_id = $1 AND method = $2 AND request_id = $3
                      AND create_time > now() - $4::interval
                    """,
                    caller_id,
                    method,
                    request_id,
                    RETENTION,
                )
                if stored is not None:
                    return bytes(stored)
                result = await work()
                await conn.execute(
                    """
                    INSERT INTO idempotency (caller_id, method, request_id, response)
                    VALUES ($1, $2, $3, $4)
                    ON CONFLICT (caller_id, method, request_id)
                    DO UPDATE SET response = EXCLUDED.response, create_time = now()
                    """,
                    caller_id,
                    method,
                    request_id,
                    result,
                )
                return result
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", key)
