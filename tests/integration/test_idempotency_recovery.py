"""A request_id whose first call died mid-way is not stuck: a later retry runs it."""

from __future__ import annotations

import asyncio

import asyncpg

from depot.services.metadata.idempotency import Idempotency


def test_abandoned_claim_is_taken_over(database_url: str) -> None:
    async def scenario() -> tuple[bytes, bytes, int]:
        pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
        try:
            idem = Idempotency(pool)
            # A first call claimed the id and died before storing a response...
            await pool.execute(
                "INSERT INTO idempotency (caller_id, method, request_id, create_time)"
                " VALUES (1, 'M', 'r1', now() - interval '2 minutes')"
            )
            calls = 0

            async def work() -> bytes:
                nonlocal calls
                calls += 1
                return b"done"

            # ... so a retry runs the work instead of waiting forever,
            first = await idem.once(1, "M", "r1", work)
            # and the retry after it gets the stored answer without running again.
            second = await idem.once(1, "M", "r1", work)
            return first, second, calls
        finally:
            await pool.close()

    assert asyncio.run(scenario()) == (b"done", b"done", 1)
