"""The blob collector's cost: one pass over LIVE live blobs and GARBAGE garbage blobs.

The world is built directly, not by uploads: blob files (or S3 objects)
under real keys, one manifest naming every live blob written with the
native writer, and one committed version row naming that manifest, in an
embedded PostgreSQL. Everything is made older than the grace period. One
pass (``BlobCollector.run``) then marks and sweeps; a JSON line per repeat
reports ``backend``, ``live_blobs``, ``garbage_blobs``, ``wall_s`` (the
whole pass), ``mark_s``, ``sweep_s``, ``blobs_per_s`` (garbage deleted per
second of the whole pass), ``peak_rss_mib`` (of this process, which runs
only the pass once the world is built: the world is built in a child
process) and, for S3, ``requests``.

Usage::

    python bench/gc.py --backend local --live 1000000 --garbage 1000000
    python bench/gc.py --backend s3 --live 10000 --garbage 100000

Targets (issue 12): local, 1M garbage among 1M live: peak RSS <= 256 MiB and
>= 20,000 garbage blobs deleted per second; S3: report wall, requests, RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
from _harness import store_manifest

from depot.services.allinone.postgres import LocalPostgres
from depot.services.gc.sweep import BlobCollector
from depot.services.manifest.public import open_store
from depot.services.manifest.store import S3Options
from depot.services.metadata import db

GRACE_S = 3600.0
OLD = time.time() - 10 * GRACE_S
ENTITY = "bench"


def _keys(n: int, seed: int) -> Iterator[tuple[str, str]]:
    """(blob key, base64 digest) of ``n`` distinct random xxh3_128 blobs."""
    rng = random.Random(seed)
    for _ in range(n):
        raw = rng.randbytes(16)
        h = raw.hex()
        yield f"{ENTITY}/blobs/xxh3_128/{h[:2]}/{h}", base64.b64encode(raw).decode()


def build_local(root: Path, live: int, garbage: int) -> str:
    """Blob files for both sets and a manifest of the live ones; returns the manifest id."""
    for d in range(256):
        (root / ENTITY / "blobs" / "xxh3_128" / f"{d:02x}").mkdir(parents=True, exist_ok=True)
    entries = []
    for i, (key, digest) in enumerate(_keys(live, 1)):
        _write(root / key)
        entries.append((f"f/{i:08d}", "xxh3_128", digest, 8, ""))
    for key, _ in _keys(garbage, 2):
        _write(root / key)
    entries.sort()
    manifest_id, _, path = store_manifest(root, ENTITY, entries)
    for dirpath, _, names in os.walk(root / ENTITY):
        for n in names:
            os.utime(os.path.join(dirpath, n), (OLD, OLD))
    return manifest_id


def _write(path: Path) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(fd, b"12345678")
    os.close(fd)


async def build_s3(endpoint: str, bucket: str, live: int, garbage: int, tmp: Path) -> str:
    """The same world in a bucket (PUTs, 64 at a time); the manifest is uploaded too."""
    from aiobotocore.session import get_session

    entries = [(f"f/{i:08d}", "xxh3_128", d, 8, "") for i, (_, d) in enumerate(_keys(live, 1))]
    entries.sort()
    manifest_id, _, path = store_manifest(tmp, ENTITY, entries)
    keys = [k for k, _ in _keys(live, 1)] + [k for k, _ in _keys(garbage, 2)]
    async with get_session().create_client("s3", endpoint_url=endpoint, region_name="us-east-1") as s3:
        await s3.create_bucket(Bucket=bucket)
        await s3.put_object(
            Bucket=bucket, Key=f"depot/{ENTITY}/manifests/{manifest_id[:2]}/{manifest_id}", Body=path.read_bytes()
        )
        gate = asyncio.Semaphore(64)

        async def put(key: str) -> None:
            async with gate:
                await s3.put_object(Bucket=bucket, Key=f"depot/{key}", Body=b"12345678")

        await asyncio.gather(*(put(k) for k in keys))
    return manifest_id


async def add_version(dsn: str, manifest_id: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        eid = await conn.fetchval("INSERT INTO entities (name, kind) VALUES ($1, 'team') RETURNING id", ENTITY)
        pid = await conn.fetchval("INSERT INTO projects (entity_id, name) VALUES ($1, 'p') RETURNING id", eid)
        cid = await conn.fetchval(
            "INSERT INTO collections (project_id, name, type) VALUES ($1, 'big', 'dataset') RETURNING id", pid
        )
        await conn.execute(
            "INSERT INTO versions (uid, collection_id, index, state, digest, manifest_id, commit_time)"
            " VALUES ($1, $2, 0, 'committed', 'x', $3, now())",
            uuid.uuid4(),
            cid,
            manifest_id,
        )
    finally:
        await conn.close()


async def one_pass(dsn: str, url: str, work: Path, endpoint: str | None, grace_s: float) -> dict[str, Any]:
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    s3 = S3Options(endpoint_url=endpoint) if endpoint else None
    store = await open_store(url, staging_dir=work / "staging", s3=s3)
    requests = 0
    client = getattr(store, "_client", None)
    if client is not None:

        def count(**_: Any) -> None:
            nonlocal requests
            requests += 1

        client.meta.events.register("before-send.s3", count)
    try:
        t = time.perf_counter()
        result = await BlobCollector(pool, store, grace_s, work).run("", dry_run=False)
        wall = time.perf_counter() - t
    finally:
        await store.aclose()
        await pool.close()
    out = {"wall_s": round(wall, 2), "mark_s": round(result.mark_s, 2), "sweep_s": round(result.sweep_s, 2)}
    out["deleted"] = result.blobs_deleted
    out["errors"] = len(result.errors)
    if client is not None:
        out["requests"] = requests
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", choices=["local", "s3"], default="local")
    ap.add_argument("--live", type=int, default=1_000_000)
    ap.add_argument("--garbage", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--dir", type=Path, default=None, help="where the store and database go (default: a temp dir)")
    ap.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    opts = ap.parse_args()
    if opts.child:
        # The pass alone in this process, so its peak RSS is the pass's.
        dsn, url, work, endpoint, grace = opts.child
        res = asyncio.run(one_pass(dsn, url, Path(work), endpoint or None, float(grace)))
        res["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        print(json.dumps(res))
        return
    base = Path(opts.dir or tempfile.mkdtemp(prefix="depot-bench-gc-"))
    pg = LocalPostgres.for_data_dir(base / "pg", durable=False).start()
    moto = None
    try:
        lines = []
        for r in range(opts.repeat):
            dsn = asyncio.run(pg.create_database(f"gc{r}"))
            asyncio.run(db.migrate(dsn))
            endpoint = ""
            if opts.backend == "local":
                root = base / f"blobs{r}"
                t = time.perf_counter()
                manifest_id = build_local(root, opts.live, opts.garbage)
                url = root.as_uri()
            else:
                from moto.server import ThreadedMotoServer

                if moto is None:
                    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
                    moto.start()
                host, port = moto.get_host_and_port()
                endpoint = f"http://{host}:{port}"
                os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
                os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
                bucket = f"gc-bench-{r}"
                t = time.perf_counter()
                manifest_id = asyncio.run(build_s3(endpoint, bucket, opts.live, opts.garbage, base / f"m{r}"))
                url = f"s3://{bucket}/depot"
                # moto's LastModified is now: a grace of a second, waited out.
                time.sleep(1.5)
            build_s = time.perf_counter() - t
            asyncio.run(add_version(dsn, manifest_id))
            work = base / f"work{r}"
            work.mkdir()
            child = subprocess.run(
                [sys.executable, __file__, "--child", dsn, url, str(work), endpoint, "1" if endpoint else str(GRACE_S)],
                check=True,
                capture_output=True,
                text=True,
            )
            res = json.loads(child.stdout.strip().splitlines()[-1])
            line = {
                "backend": opts.backend,
                "live_blobs": opts.live,
                "garbage_blobs": opts.garbage,
                "build_s": round(build_s, 1),
                **res,
                "blobs_per_s": round(res["deleted"] / res["wall_s"]) if res["wall_s"] else None,
            }
            print(json.dumps(line), flush=True)
            lines.append(line)
        if len(lines) > 1:
            print(
                json.dumps(
                    {
                        "median": True,
                        "backend": opts.backend,
                        "wall_s": statistics.median(x["wall_s"] for x in lines),
                        "blobs_per_s": statistics.median(x["blobs_per_s"] for x in lines),
                        "peak_rss_mib": statistics.median(x["peak_rss_mib"] for x in lines),
                    }
                )
            )
    finally:
        if moto is not None:
            moto.stop()
        pg.destroy()


if __name__ == "__main__":
    main()
