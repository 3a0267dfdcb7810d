"""request_id records commit with the work they record, or not at all."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from depot.services.metadata.db import Database, create_pool
from depot.services.metadata.idempotency import Grant, Idempotency

# These calls pass no access check, so a replay has nothing to re-check.
FP = b"fingerprint of the request"


async def _holds(grant: Grant) -> bool:
    raise AssertionError(f"no access check was noted, yet {grant} is re-checked")


def _with_db(database_url: str, scenario: Callable[[Database], Awaitable[object]]) -> object:
    async def run() -> object:
        pool = await create_pool(database_url, min_size=1, max_size=4)  # the service's codecs
        try:
            await pool.execute("CREATE TABLE effects (request text)")
            return await scenario(Database(pool))
        finally:
            await pool.close()

    return asyncio.run(run())


def test_a_failed_call_leaves_nothing_and_its_retry_runs(database_url: str) -> None:
    async def scenario(db: Database) -> tuple[object, ...]:
        idem = Idempotency(db)
        calls = 0

        async def work() -> bytes:
            nonlocal calls
            calls += 1
            await db.execute("INSERT INTO effects VALUES ('r1')")
            if calls == 1:
                raise RuntimeError("the first attempt dies after writing")
            return b"done"

        try:
            await idem.once(1, "M", "r1", FP, work, _holds)
        except RuntimeError:
            pass
        after_failure = await db.fetchval("SELECT count(*) FROM effects")
        first = await idem.once(1, "M", "r1", FP, work, _holds)
        second = await idem.once(1, "M", "r1", FP, work, _holds)
        effects = await db.fetchval("SELECT count(*) FROM effects")
        return after_failure, first, second, calls, effects

    # The failed attempt's write rolled back with its claim; the retry ran
    # once, and the call after it got the stored answer.
    assert _with_db(database_url, scenario) == (0, b"done", b"done", 2, 1)


def test_concurrent_retries_have_one_effect(database_url: str) -> None:
    async def scenario(db: Database) -> tuple[object, ...]:
        idem = Idempotency(db)
        calls = 0

        async def work() -> bytes:
            nonlocal calls
            calls += 1
            await db.execute("INSERT INTO effects VALUES ('r2')")
            await asyncio.sleep(0.2)  # the others arrive while this one runs
            return f"answer {calls}".encode()

        results = await asyncio.gather(*(idem.once(7, "M", "r2", FP, work, _holds) for _ in range(3)))
        return tuple(results), calls, await db.fetchval("SELECT count(*) FROM effects")

    assert _with_db(database_url, scenario) == ((b"answer 1",) * 3, 1, 1)
