"""One GC pass at a time across replicas; the lock is released after each pass."""

from __future__ import annotations

import asyncio

from depot.services.gc.collector import _LEADER_LOCK, Collector
from depot.services.metadata import db


def test_only_one_replica_collects_and_the_lock_is_released(database_url: str) -> None:
    async def scenario() -> tuple[bool, bool, bool]:
        replica_a = await db.create_pool(database_url, min_size=1, max_size=2)
        replica_b = await db.create_pool(database_url, min_size=1, max_size=2)
        try:
            # Another replica holds the leader lock: this one must not collect.
            async with replica_a.acquire() as holder:
                await holder.execute("SELECT pg_advisory_lock($1)", _LEADER_LOCK)
                blocked = (await Collector(replica_b).run("", force=False)).ran
                await holder.execute("SELECT pg_advisory_unlock($1)", _LEADER_LOCK)
            first = (await Collector(replica_b).run("", force=True)).ran
            # The pooled connection went back without the lock: replica A can lead now.
            second = (await Collector(replica_a).run("", force=True)).ran
            return blocked, first, second
        finally:
            await replica_a.close()
            await replica_b.close()

    assert asyncio.run(scenario()) == (False, True, True)
