"""Resolving an alias reads one version row, however many the collection has."""

from __future__ import annotations

import asyncio
import json

import asyncpg

from depot.services.metadata.resolver import VERSION_BY_ALIAS


def _version_rows_read(plan: dict) -> int:
    """Rows the plan's scans of ``versions`` produced or filtered away."""
    node = plan
    total = 0
    if node.get("Relation Name") == "versions":
        total += node.get("Actual Rows", 0) + node.get("Rows Removed by Filter", 0)
    for child in node.get("Plans", []):
        total += _version_rows_read(child)
    return total


def test_alias_resolution_does_not_scan_the_collection(database_url: str) -> None:
    async def scenario() -> int:
        conn = await asyncpg.connect(database_url)
        try:
            eid = await conn.fetchval("INSERT INTO entities (name, kind) VALUES ('team', 'team') RETURNING id")
            pid = await conn.fetchval("INSERT INTO projects (entity_id, name) VALUES ($1, 'p') RETURNING id", eid)
            cid = await conn.fetchval(
                "INSERT INTO collections (project_id, name, type) VALUES ($1, 'ds', 'dataset') RETURNING id", pid
            )
            # Many committed versions, and the statistics of an empty table:
            # the situation in which the planner used to scan them all.
            await conn.execute(
                """
                INSERT INTO versions (uid, collection_id, state, index, digest, digest_algorithm,
                                      manifest_id, size, file_count, commit_time)
                SELECT gen_random_uuid(), $1, 'committed', g, 'd' || g, 'xxh3_128', 'm', 1, 1, now()
                FROM generate_series(0, 1999) g
                """,
                cid,
            )
            await conn.execute(
                "INSERT INTO aliases (collection_id, alias, version_id)"
                " SELECT $1, 'prod', id FROM versions WHERE index = 1000",
                cid,
            )
            explain = "EXPLAIN (ANALYZE, FORMAT JSON) " + VERSION_BY_ALIAS
            out = await conn.fetchval(explain, "team", "p", "ds", "prod")
            row = await conn.fetchrow(VERSION_BY_ALIAS, "team", "p", "ds", "prod")
            assert row["index"] == 1000
            return _version_rows_read(json.loads(out)[0]["Plan"])
        finally:
            await conn.close()

    assert asyncio.run(scenario()) == 1
