"""Bulk delete benchmark: one `DeleteArtifactVersions` over N committed versions, end to end.

    python bench/bulk_delete.py [--versions 1000000] [--collections 1]

Starts ``depot server`` (embedded PostgreSQL, local blobs) in a subprocess on
a temporary data dir, inserts N committed versions directly with SQL (one
``INSERT ... SELECT generate_series`` per collection; the issue's user has
5 million), then deletes them all with the SDK as the CLI does
(``Api().delete_artifact_versions(..., delete_aliases=True).wait()``) and
prints one JSON line:

    {"versions": N, "wall_s": ..., "versions_per_s": ..., "server_peak_rss_mib": ...}

``wall_s`` runs from the call to the operation's end, counting included;
``server_peak_rss_mib`` is the server process's VmHWM (its peak resident
set), read once the delete is done.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

import asyncpg
from _harness import start_allinone

import depot
from depot.services.allinone.postgres import LocalPostgres

ENTITY, PROJECT = "bench", "p"


async def _seed(dsn: str, versions: int, collections: int) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        eid = await conn.fetchval("INSERT INTO entities (name, kind) VALUES ($1, 'team') RETURNING id", ENTITY)
        pid = await conn.fetchval("INSERT INTO projects (entity_id, name) VALUES ($1, $2) RETURNING id", eid, PROJECT)
        per = versions // collections
        for c in range(collections):
            n = per + (versions % collections if c == 0 else 0)
            cid = await conn.fetchval(
                "INSERT INTO collections (project_id, name, type, next_index) VALUES ($1, $2, 'dataset', $3)"
                " RETURNING id",
                pid,
                f"c{c}",
                n,
            )
            await conn.execute(
                """
                INSERT INTO versions (uid, collection_id, index, state, digest, digest_algorithm,
                                      manifest_id, commit_time)
                SELECT gen_random_uuid(), $1, i, 'committed', md5(i::text), 'md5', md5(i::text),
                       now() - interval '1 day'
                FROM generate_series(0, $2 - 1) AS i
                """,
                cid,
                n,
                timeout=3600,
            )
            await conn.execute(
                "INSERT INTO aliases (collection_id, alias, version_id)"
                " SELECT $1, 'latest', id FROM versions WHERE collection_id = $1 AND index = $2 - 1",
                cid,
                n,
            )
        await conn.execute("ANALYZE versions")
    finally:
        await conn.close()


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError("no VmHWM")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--versions", type=int, default=1_000_000)
    ap.add_argument("--collections", type=int, default=1)
    opts = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        proc, address, key = start_allinone(data)
        try:
            asyncio.run(_seed(LocalPostgres.for_data_dir(data).dsn("depot"), opts.versions, opts.collections))
            api = depot.Api(address, key)
            start = time.perf_counter()
            op = api.delete_artifact_versions(f"{ENTITY}/{PROJECT}", delete_aliases=True)
            op.wait()
            wall = time.perf_counter() - start
            assert op.deleted == opts.versions, op
            print(
                json.dumps(
                    {
                        "versions": opts.versions,
                        "collections": opts.collections,
                        "wall_s": round(wall, 2),
                        "versions_per_s": round(opts.versions / wall),
                        "server_peak_rss_mib": _peak_rss_mib(proc.pid),
                    }
                ),
                flush=True,
            )
        finally:
            proc.terminate()
            proc.wait(60)


if __name__ == "__main__":
    main()
