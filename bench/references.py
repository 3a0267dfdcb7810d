"""Benchmark: S3 reference listing (Depot) vs a plain botocore paginator.

Each repeat:
1. starts the simulator (bench/s3sim.py) in its own subprocess, so its CPU is
   not charged to the lister and the two use separate cores;
2. runs Depot's ``write_s3_reference`` in a *fresh* subprocess (clean
   ``ru_maxrss``) writing a native ManifestWriter to a temp file — the figure is
   the lister's wall clock for list + manifest written + digest;
3. runs the baseline in another fresh subprocess: aiobotocore's
   ``list_objects_v2`` paginator (botocore-parsed, sequential) on the same key
   space, capped at ``--baseline-max`` objects.

Prints one JSON object per line: one per run (``"run": k``), then the medians
(``"run": "median"``) with ``ratio_vs_baseline`` = Depot objects/s ÷ baseline
objects/s.

    python bench/references.py --objects 10000000 --latency-ms 0 --layout nested --repeat 3

Faults (issue 9): ``--slowdown-rate 0.5`` (or ``--error500-rate``,
``--reset-rate``, ``--access-denied-rate``; 1.0 = permanent) injects them in
the simulator. The Depot run then also reports ``throttles``,
``lowest_concurrency`` and, when the listing fails, ``error`` (the domain
error's class, reason and message) with ``wall_s`` = time to that error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOTS = {"nested": "dataset", "flat": "flat"}


def _usage() -> tuple[float, float]:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime, r.ru_maxrss / 1024.0


async def _child_depot(a: argparse.Namespace) -> dict:
    from depot.native import MANIFEST_COMPILED, S3PAGE_COMPILED, ManifestWriter
    from depot.services.common.errors import DepotError
    from depot.services.manifest.s3_listing import S3Config, write_s3_reference

    cfg = S3Config(
        endpoint_url=a.endpoint, region="us-east-1", aws_access_key_id="bench", aws_secret_access_key="bench"
    )
    with tempfile.TemporaryFile() as f:
        cpu0 = _usage()[0]
        t0 = time.perf_counter()
        writer = ManifestWriter(f, "md5")
        try:
            stats = await write_s3_reference(
                f"s3://bench/{ROOTS[a.layout]}",
                writer,
                session_config=cfg,
                concurrency=a.concurrency,
                max_objects=max(a.objects, 1),
            )
        except DepotError as e:
            return {
                "impl": "depot",
                "objects": 0,
                "wall_s": round(time.perf_counter() - t0, 3),
                "objects_per_s": 0,
                "peak_rss_mib": round(_usage()[1], 1),
                "cpu_s": round(_usage()[0] - cpu0, 2),
                "error": f"{type(e).__name__} {e.reason}: {e.message}",
            }
        summary = writer.close()
        wall = time.perf_counter() - t0
        cpu1, rss = _usage()
        size = f.tell()
    return {
        "impl": "depot",
        "objects": summary.count,
        "wall_s": round(wall, 3),
        "objects_per_s": round(summary.count / wall),
        "peak_rss_mib": round(rss, 1),
        "cpu_s": round(cpu1 - cpu0, 2),
        "digest": summary.digest,
        "requests": stats.requests,
        "retries": stats.retries,
        "throttles": stats.throttles,
        "lowest_concurrency": stats.lowest_concurrency,
        "units": stats.units,
        "spilled_pages": stats.spilled_pages,
        "manifest_bytes": size,
        "native": bool(MANIFEST_COMPILED and S3PAGE_COMPILED),
    }


async def _child_baseline(a: argparse.Namespace) -> dict:
    import hashlib

    from aiobotocore.session import get_session
    from botocore.config import Config

    cpu0 = _usage()[0]
    t0 = time.perf_counter()
    n = 0
    pairs = []
    async with get_session().create_client(
        "s3",
        endpoint_url=a.endpoint,
        region_name="us-east-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
        config=Config(s3={"addressing_style": "path"}),
    ) as c:
        prefix = ROOTS[a.layout] + "/"
        async for page in c.get_paginator("list_objects_v2").paginate(Bucket="bench", Prefix=prefix):
            for o in page.get("Contents", []):
                pairs.append((o["Key"][len(prefix) :], o["ETag"].strip('"')))
            n = len(pairs)
            if n >= a.baseline_max:
                break
    h = hashlib.md5(b"wandb-artifact-manifest-v1\n")
    for p, e in sorted(pairs):
        h.update(f"{p}:{e}\n".encode())
    wall = time.perf_counter() - t0
    cpu1, rss = _usage()
    return {
        "impl": "baseline-aiobotocore-paginator",
        "objects": n,
        "wall_s": round(wall, 3),
        "objects_per_s": round(n / wall),
        "peak_rss_mib": round(rss, 1),
        "cpu_s": round(cpu1 - cpu0, 2),
        "digest": h.hexdigest(),
    }


_FAULTS = ("slowdown_rate", "error500_rate", "reset_rate", "access_denied_rate")


def _fault_args(a: argparse.Namespace) -> list[str]:
    out = []
    for f in _FAULTS:
        if getattr(a, f):
            out += ["--" + f.replace("_", "-"), str(getattr(a, f))]
    return out + ["--seed", str(a.seed)]


def _start_sim(a: argparse.Namespace) -> tuple[subprocess.Popen, str]:
    p = subprocess.Popen(
        [
            sys.executable,
            str(HERE / "s3sim.py"),
            "--objects",
            str(a.objects),
            "--layout",
            a.layout,
            "--latency-ms",
            str(a.latency_ms),
            "--port",
            "0",
            *_fault_args(a),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert p.stdout is not None
    endpoint = p.stdout.readline().strip()
    if not endpoint.startswith("http"):
        p.kill()
        raise RuntimeError("simulator did not start")
    return p, endpoint


def _proc_cpu(pid: int) -> float | None:
    """CPU seconds used so far by the simulator process (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return round((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), 2)
    except (OSError, IndexError, ValueError):
        return None


def _run_child(a: argparse.Namespace, kind: str, endpoint: str) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--child",
        kind,
        "--endpoint",
        endpoint,
        "--objects",
        str(a.objects),
        "--layout",
        a.layout,
        "--latency-ms",
        str(a.latency_ms),
        "--baseline-max",
        str(a.baseline_max),
        "--concurrency",
        str(a.concurrency),
    ]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="S3 reference listing benchmark")
    ap.add_argument("--objects", type=int, default=1_000_000)
    ap.add_argument("--latency-ms", type=float, default=0.0)
    ap.add_argument("--layout", choices=sorted(ROOTS), default="nested")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--baseline-max", type=int, default=50_000)
    ap.add_argument("--concurrency", type=int, default=32)
    for f in _FAULTS:
        ap.add_argument("--" + f.replace("_", "-"), type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=0, help="simulator fault seed; run k uses seed + k")
    ap.add_argument(
        "--verify", action="store_true", help="also check Depot's digest against the one computed from the key formula"
    )
    ap.add_argument("--child", choices=["depot", "baseline"], help=argparse.SUPPRESS)
    ap.add_argument("--endpoint", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)

    if a.child:
        fn = _child_depot if a.child == "depot" else _child_baseline
        print(json.dumps(asyncio.run(fn(a))), flush=True)
        return

    common = {"latency_ms": a.latency_ms, "layout": a.layout, **{f: getattr(a, f) for f in _FAULTS if getattr(a, f)}}
    depot_runs, base_runs = [], []
    seed0 = a.seed
    for k in range(a.repeat):
        a.seed = seed0 + k
        sim, endpoint = _start_sim(a)
        try:
            d = _run_child(a, "depot", endpoint)
            b = _run_child(a, "baseline", endpoint) if a.baseline_max > 0 else None
            d["sim_cpu_s"] = _proc_cpu(sim.pid)
        finally:
            sim.terminate()
            sim.wait()
        d.update(common, run=k)
        depot_runs.append(d)
        print(json.dumps(d), flush=True)
        if b is not None:
            b.update(common, run=k)
            base_runs.append(b)
            print(json.dumps(b), flush=True)

    def median(runs: list[dict]) -> dict:
        m = dict(runs[0])
        for f in ("wall_s", "objects_per_s", "peak_rss_mib", "cpu_s", "requests", "retries", "throttles"):
            if all(f in r for r in runs):
                m[f] = statistics.median(r[f] for r in runs)
        if all("lowest_concurrency" in r for r in runs):
            m["lowest_concurrency"] = min(r["lowest_concurrency"] for r in runs)
        m["run"] = "median"
        m["repeats"] = len(runs)
        return m

    dm = median(depot_runs)
    if base_runs:
        bm = median(base_runs)
        dm["baseline_objects_per_s"] = bm["objects_per_s"]
        dm["ratio_vs_baseline"] = round(dm["objects_per_s"] / max(bm["objects_per_s"], 1), 1)
        print(json.dumps(bm), flush=True)
    if a.verify:
        sys.path.insert(0, str(HERE))
        import hashlib

        import s3sim

        space = s3sim.KeySpace(a.objects, a.layout)
        strip = len(ROOTS[a.layout]) + 1
        h = hashlib.md5(b"wandb-artifact-manifest-v1\n")
        for key, etag, _s, _v in space.expected_entries():
            h.update(f"{key[strip:]}:{etag}\n".encode())
        dm["digest_verified"] = all(r.get("digest") == h.hexdigest() for r in depot_runs)
    print(json.dumps(dm), flush=True)


if __name__ == "__main__":
    main()
