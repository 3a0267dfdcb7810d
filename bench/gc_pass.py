"""The metadata phases of a GC pass over a backlog: expire, purge, purge abandoned uploads.

    python bench/gc_pass.py --versions 100000 --repeat 3

On an embedded PostgreSQL (``depot server``'s, in a temporary dir): each
round loads ``--versions`` committed versions whose TTL ran out (with an
alias and a consumer edge each, so the cascades are paid for) and as many
pending versions older than the grace, then runs one pass with a zero grace,
so the versions it expires are purged in the same pass. One JSON line per
phase per round, then one with the medians:
``{"bench": "gc_pass", "phase": "purge", "versions": N, "wall_s": ..., "per_s": ...}``.
The blob sweep is measured by bench/gc.py.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
from datetime import timedelta
from pathlib import Path

import asyncpg

from depot.services.allinone.postgres import LocalPostgres
from depot.services.gc.collector import Collector
from depot.services.metadata import db

_LOAD = """
WITH e AS (INSERT INTO entities (name, kind) VALUES ($2, 'team') RETURNING id),
     p AS (INSERT INTO projects (entity_id, name) SELECT id, 'p' FROM e RETURNING id),
     c AS (INSERT INTO collections (project_id, name, type, next_index) SELECT id, 'ds', 'dataset', $1 FROM p
           RETURNING id),
     r AS (INSERT INTO runs (project_id, name) SELECT id, 'r' FROM p RETURNING id),
     v AS (INSERT INTO versions (uid, collection_id, index, state, digest, manifest_id, ttl, commit_time)
           SELECT gen_random_uuid(), c.id, i, 'committed', 'd' || i, 'm' || i, '1 second',
                  now() - interval '1 hour'
           FROM c, generate_series(0, $1 - 1) i RETURNING id, collection_id, index),
     a AS (INSERT INTO aliases (collection_id, alias, version_id) SELECT collection_id, 'a' || index, id FROM v),
     u AS (INSERT INTO run_inputs (run_id, version_id) SELECT r.id, v.id FROM r, v)
INSERT INTO versions (uid, collection_id, state, create_time)
SELECT gen_random_uuid(), c.id, 'pending', now() - interval '1 hour' FROM c, generate_series(1, $1)
"""


async def _round(dsn: str, versions: int, entity: str) -> dict[str, float]:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(_LOAD, versions, entity)
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    pool = await db.create_pool(dsn, min_size=1, max_size=2)
    try:
        report = await Collector(pool, grace=timedelta(0)).run(entity, force=True)
    finally:
        await pool.close()
    counts = {
        "expire": report.versions_expired,
        "purge": report.versions_purged,
        "purge_pending": report.pending_purged,
    }
    if any(n != versions for n in counts.values()) or report.errors:
        raise SystemExit(f"unexpected pass: {counts}, errors {report.errors}")
    return {p.name: p.duration_s for p in report.phases if p.name in counts}


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--versions", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    opts = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="depot-gc-bench-") as tmp:
        pg = LocalPostgres.for_data_dir(Path(tmp), durable=False)
        await asyncio.to_thread(pg.start)
        try:
            dsn = await pg.create_database("depot")
            await db.migrate(dsn)
            rounds = []
            for i in range(opts.repeat):
                times = await _round(dsn, opts.versions, f"bench{i}")
                rounds.append(times)
                for phase, wall in times.items():
                    line = {"bench": "gc_pass", "round": i, "phase": phase, "versions": opts.versions}
                    print(json.dumps({**line, "wall_s": round(wall, 3), "per_s": round(opts.versions / wall)}))
            for phase in rounds[0]:
                wall = statistics.median(r[phase] for r in rounds)
                line = {"bench": "gc_pass", "phase": phase, "versions": opts.versions, "median_of": opts.repeat}
                print(json.dumps({**line, "wall_s": round(wall, 3), "per_s": round(opts.versions / wall)}))
        finally:
            await asyncio.to_thread(pg.destroy)


if __name__ == "__main__":
    asyncio.run(main())
