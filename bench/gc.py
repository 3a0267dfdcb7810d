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
import multiprocessing
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
from _harness import store_manifest

from depot.services.allinone.postgres import LocalPostgres
from depot.services.gc.sweep import BlobCollector
from depot.services.manifest import sweeping
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


def build_live(root: Path, live: int, blob_bytes: int, workers: int) -> str:
    """The live blob files and a manifest naming them; returns the manifest id."""
    entries = [(f"f/{i:08d}", "xxh3_128", d, blob_bytes, "") for i, (_, d) in enumerate(_keys(live, 1))]
    entries.sort()
    manifest_id, _, _ = store_manifest(root, ENTITY, entries)
    del entries
    write_files(root, (k for k, _ in _keys(live, 1)), blob_bytes, workers)
    return manifest_id


def write_files(root: Path, keys: Iterable[str], blob_bytes: int, workers: int) -> None:
    """A file of ``blob_bytes`` bytes at each key: one task per fan-out directory, ``workers`` processes.

    Creating millions of files is the filesystem's work (~150 us of kernel
    time each on the development machine's ext4); a process per core and
    ``O_CREAT`` relative to an open directory keep Python out of the way.
    """
    by_dir: dict[str, list[str]] = {}
    for key in keys:
        d, _, name = key.rpartition("/")
        by_dir.setdefault(d, []).append(name)
    tasks = [(str(root / d), names, blob_bytes) for d, names in sorted(by_dir.items())]
    del by_dir
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        for _ in pool.imap_unordered(_write_dir, tasks):
            pass


def _write_dir(task: tuple[str, list[str], int]) -> None:
    path, names, blob_bytes = task
    os.makedirs(path, exist_ok=True)
    body = b"x" * blob_bytes
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    dfd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for name in names:
            fd = os.open(name, flags, 0o644, dir_fd=dfd)
            if body:
                os.write(fd, body)
            os.close(fd)
    finally:
        os.close(dfd)


async def build_s3(endpoint: str, bucket: str, keys: Iterable[str], manifest: Path | None) -> None:
    """PUTs an 8-byte object at each key, and first the bucket and the manifest at its key if given.

    Plain HTTP/1.1 PUTs, pipelined on 8 connections, not botocore: its
    ~4 ms of CPU per request would make building the world, not the pass,
    the benchmark's cost (the simulator and moto do not check signatures).
    The objects are real all the same: the pass lists, HEADs and deletes
    them through botocore like any S3 store's.
    """
    host, _, port = endpoint.removeprefix("http://").partition(":")
    if manifest is not None:
        await _put_all(host, int(port), [(f"/{bucket}", b"")])
        key = f"depot/{ENTITY}/manifests/{manifest.name[:2]}/{manifest.name}"
        await _put_all(host, int(port), [(f"/{bucket}/{key}", manifest.read_bytes())])
    batch: list[tuple[str, bytes]] = []
    for k in keys:
        batch.append((f"/{bucket}/depot/{k}", b"12345678"))
        if len(batch) == 8000:
            await _put_all(host, int(port), batch)
            batch = []
    if batch:
        await _put_all(host, int(port), batch)


async def _put_all(host: str, port: int, puts: list[tuple[str, bytes]], conns: int = 8) -> None:
    async def one(share: list[tuple[str, bytes]]) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            for path, body in share:
                head = f"PUT {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: {len(body)}\r\n\r\n"
                writer.write(head.encode() + body)
            await writer.drain()
            for path, _ in share:
                status = await reader.readuntil(b"\r\n")
                headers = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").lower()
                length = next((int(h[15:]) for h in headers.split("\r\n") if h.startswith("content-length:")), 0)
                await reader.readexactly(length)
                if status.split()[1] != b"200":
                    raise RuntimeError(f"PUT {path}: {status.decode().strip()}")
        finally:
            writer.close()

    await asyncio.gather(*(one(puts[i::conns]) for i in range(conns)))


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
    if os.environ.get("DEPOT_BENCH_GC_BASELINE"):
        # The A/B's "before": listing times parsed by botocore's own (dateutil) parser.
        from botocore.utils import parse_timestamp

        sweeping.parse_timestamp = parse_timestamp
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
    rss_before = _rss_mib()
    try:
        t = time.perf_counter()
        cpu = time.process_time()
        result = await BlobCollector(pool, store, grace_s, work).run("", dry_run=False)
        cpu = time.process_time() - cpu
        wall = time.perf_counter() - t
    finally:
        await store.aclose()
        await pool.close()
    out: dict[str, Any] = {"wall_s": round(wall, 2), "mark_s": round(result.mark_s, 2)}
    out["sweep_s"] = round(result.sweep_s, 2)
    out["cpu_s"] = round(cpu, 2)
    out["deleted"] = result.blobs_deleted
    out["scanned"] = result.blobs_scanned
    out["errors"] = len(result.errors)
    if result.errors:
        print("\n".join(result.errors[:5]), file=sys.stderr)
    if client is not None:
        out["requests"] = requests
    out["rss_before_pass_mib"] = rss_before
    return out


def _rss_mib() -> float:
    """This process's peak RSS since its exec (VmHWM).

    Not ``getrusage``'s ``ru_maxrss``: Linux carries it across fork and
    exec, so a child would report its parent's peak when that was larger
    (a parent holding moto's objects, or the world's million manifest
    entries: the 244 MiB once reported for an S3 pass of 20,000 keys).
    """
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _fs_type(path: Path) -> str:
    """The filesystem ``path`` is on (the longest mount point above it)."""
    best, kind = "", "?"
    with open("/proc/mounts") as f:
        for line in f:
            _, mnt, fs = line.split()[:3]
            if str(path).startswith(mnt) and len(mnt) > len(best):
                best, kind = mnt, fs
    return kind


def _child(argv: list[str], profile: Path | None) -> dict[str, Any]:
    dsn, url, work, endpoint, grace = argv
    run = lambda: asyncio.run(one_pass(dsn, url, Path(work), endpoint or None, float(grace)))  # noqa: E731
    if profile is None:
        res = run()
    else:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        res = prof.runcall(run)
        prof.dump_stats(profile)
        pstats.Stats(prof, stream=sys.stderr).sort_stats("cumulative").print_stats(30)
    res["peak_rss_mib"] = _rss_mib()
    return res


def _start_sim() -> tuple[subprocess.Popen[str], str]:
    """``s3sim.py --stateful`` in its own process, so its CPU and memory are not the pass's."""
    sim = subprocess.Popen(
        [sys.executable, str(Path(__file__).parent / "s3sim.py"), "--stateful", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert sim.stdout is not None
    return sim, sim.stdout.readline().strip()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", choices=["local", "s3"], default="local")
    ap.add_argument("--live", type=int, default=1_000_000)
    ap.add_argument("--garbage", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--dir", type=Path, default=None, help="where the database and work dirs go (default: a temp dir)")
    ap.add_argument("--blob-dir", type=Path, default=None, help="where the local store's root is made (default: --dir)")
    ap.add_argument("--blob-bytes", type=int, default=8, help="bytes per local blob file (0 on tmpfs spares RAM)")
    ap.add_argument("--workers", type=int, default=4, help="processes creating the world's files")
    ap.add_argument("--s3", choices=["sim", "moto"], default="sim", help="s3sim.py --stateful, or moto's server")
    ap.add_argument("--profile", type=Path, default=None, help="cProfile the pass into this file")
    ap.add_argument(
        "--ab", action="store_true", help="S3: each repeat also runs a baseline pass (botocore's timestamp parser)"
    )
    ap.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    opts = ap.parse_args()
    if opts.child:
        # The pass alone in this process, so its peak RSS is the pass's.
        print(json.dumps(_child(opts.child, opts.profile)))
        return
    base = Path(opts.dir or tempfile.mkdtemp(prefix="depot-bench-gc-"))
    # A fresh directory of its own, so removing it at the end removes only the world.
    blob_root = Path(tempfile.mkdtemp(prefix="depot-bench-gc-blobs-", dir=opts.blob_dir or base))
    pg = LocalPostgres.for_data_dir(base / "pg", durable=False).start()
    server: Any = None
    try:
        dsn = asyncio.run(pg.create_database("gc"))
        asyncio.run(db.migrate(dsn))
        endpoint, url = "", blob_root.as_uri()
        t = time.perf_counter()
        if opts.backend == "local":
            store_kind = _fs_type(blob_root)
            manifest_id = build_live(blob_root, opts.live, opts.blob_bytes, opts.workers)
        else:
            if opts.s3 == "moto":
                from moto.server import ThreadedMotoServer

                server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
                server.start()
                host, port = server.get_host_and_port()
                endpoint, store_kind = f"http://{host}:{port}", "moto"
            else:
                server, endpoint = _start_sim()
                store_kind = "s3sim --stateful"
            os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
            os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
            entries = [(f"f/{i:08d}", "xxh3_128", d, 8, "") for i, (_, d) in enumerate(_keys(opts.live, 1))]
            entries.sort()
            manifest_id, _, path = store_manifest(base / "m", ENTITY, entries)
            del entries
            url = "s3://gc-bench/depot"
            asyncio.run(build_s3(endpoint, "gc-bench", (k for k, _ in _keys(opts.live, 1)), path))
        live_s = time.perf_counter() - t
        asyncio.run(add_version(dsn, manifest_id))
        lines = []
        variants = ["baseline", "current"] if opts.ab else ["current"]
        for r, variant in ((r, v) for r in range(opts.repeat) for v in variants):
            # Garbage anew each repeat (the last pass deleted it); the live set stays.
            t = time.perf_counter()
            garbage = (k for k, _ in _keys(opts.garbage, 2))
            if opts.backend == "local":
                write_files(blob_root, garbage, opts.blob_bytes, opts.workers)
            else:
                asyncio.run(build_s3(endpoint, "gc-bench", garbage, None))
            build_s = time.perf_counter() - t
            # Everything is older than a grace of one second once it is waited out.
            time.sleep(1.5)
            work = base / f"work{r}-{variant}"
            work.mkdir()
            load = os.getloadavg()[0]
            cmd = [sys.executable, __file__, "--child", dsn, url, str(work), endpoint, "1"]
            if opts.profile:
                cmd[2:2] = ["--profile", str(opts.profile)]
            env = dict(os.environ, DEPOT_BENCH_GC_BASELINE="1" if variant == "baseline" else "")
            child = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
            if opts.profile:
                print(child.stderr, file=sys.stderr)
            res = json.loads(child.stdout.strip().splitlines()[-1])
            line = {
                "backend": opts.backend,
                "store": store_kind,
                "variant": variant,
                "live_blobs": opts.live,
                "garbage_blobs": opts.garbage,
                "build_live_s": round(live_s, 1),
                "build_garbage_s": round(build_s, 1),
                **res,
                "blobs_per_s": round(res["deleted"] / res["wall_s"]) if res["wall_s"] else None,
                "blobs_per_cpu_s": round(res["deleted"] / res["cpu_s"]) if res["cpu_s"] else None,
                "load_before": round(load, 1),
                "load_after": round(os.getloadavg()[0], 1),
            }
            print(json.dumps(line), flush=True)
            lines.append(line)
        keys = ["wall_s", "cpu_s", "blobs_per_s", "blobs_per_cpu_s", "peak_rss_mib", "load_before"]
        for variant in variants:
            mine = [x for x in lines if x["variant"] == variant]
            if len(mine) > 1:
                head = {"median": True, "backend": opts.backend, "store": store_kind, "variant": variant}
                print(json.dumps(head | {k: statistics.median(x[k] for x in mine) for k in keys}))
    finally:
        if isinstance(server, subprocess.Popen):
            server.terminate()
            server.wait()
        elif server is not None:
            server.stop()
        pg.destroy()
        shutil.rmtree(blob_root, ignore_errors=True)
        if not opts.dir:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
