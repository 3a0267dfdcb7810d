"""Benchmark: S3 reference listing (Depot) vs a plain botocore paginator; with
``--e2e``, what a user does end to end through the SDK and ``depot server``.

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

End to end (issue 11)::

    python bench/references.py --e2e --objects 10000000 --latency-ms 150

starts the simulator (``--download-objects`` of them also in a second bucket),
runs the library-only lister as above (``"op": "library"``), then a real
``depot server`` (separate process, embedded defaults, references listed from
the simulator) and, each in a fresh client subprocess, what a user does:
``log_reference`` (``Artifact.add_reference(s3://…)`` + ``run.log_artifact()
.wait()``), ``iterate`` (``artifact.files()``), ``get_entry`` (200 random
names), ``export`` (``depot artifact export -o FILE``) and ``download``
(``--download-objects`` referenced objects, cold cache, empty directory). See
bench/README.md for the fields. A step that fails reports ``error`` and the
run goes on; progress goes to stderr, JSON lines to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOTS = {"nested": "dataset", "flat": "flat"}
BUCKET = "bench"
DOWNLOAD_BUCKET = "bench-dl"  # the simulator serves --download-objects keys here
E2E_OPS = ("log_reference", "iterate", "get_entry", "export", "download")
GET_ENTRY_SAMPLES = 200
PROGRESS_EVERY = 1_000_000

Row = dict[str, Any]  # one JSON line


def _usage() -> tuple[float, float]:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime, r.ru_maxrss / 1024.0


async def _child_depot(a: argparse.Namespace) -> Row:
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


async def _child_baseline(a: argparse.Namespace) -> Row:
    import hashlib

    from aiobotocore.config import AioConfig
    from aiobotocore.session import get_session

    cpu0 = _usage()[0]
    t0 = time.perf_counter()
    n = 0
    pairs = []
    async with get_session().create_client(
        "s3",
        endpoint_url=str(a.endpoint),
        region_name="us-east-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
        config=AioConfig(s3={"addressing_style": "path"}),
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


def _start_sim(a: argparse.Namespace) -> tuple[subprocess.Popen[str], str]:
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
            "--filler-max",
            str(a.filler_max),
            "--bucket",
            f"{DOWNLOAD_BUCKET}={a.download_objects}",
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


def _run_child(a: argparse.Namespace, kind: str, endpoint: str) -> Row:
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
    row: Row = json.loads(out.stdout.strip().splitlines()[-1])
    return row


# -- end to end (--e2e): the SDK, a real `depot server`, what a user does -------------------


def _progress(msg: str) -> None:
    print(f"[references --e2e {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _error(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"[:1000]


def _client_row(work: Callable[[], Row]) -> Row:
    """Runs one user step in this (fresh) client process: its figures, or its error, and peak RSS."""
    t0 = time.perf_counter()
    try:
        row = work()
    except Exception as e:  # noqa: BLE001 - a step that fails is a result, not a crash of the bench
        row = {"wall_s": round(time.perf_counter() - t0, 3), "error": _error(e)}
    row["client_peak_rss_mib"] = round(_usage()[1], 1)
    return row


_E2E_CHILDREN = ("e2e-log", "e2e-iterate", "e2e-get-entry", "e2e-export", "e2e-download")


def _child_e2e(a: argparse.Namespace) -> Row:
    import depot

    key = Path(a.key_file).read_text().strip()
    root = ROOTS[a.layout]

    def log_reference() -> Row:
        run = depot.init(project="bench", job_type="e2e", address=a.address, api_key=key)
        t0 = time.perf_counter()
        art = depot.Artifact(a.artifact, type="dataset")
        art.add_reference(f"s3://{a.bucket}/{root}")
        try:
            run.log_artifact(art).wait()
        finally:
            run.finish()
        return {"wall_s": round(time.perf_counter() - t0, 3), "artifact": art.qualified_name, "digest": art.digest}

    def iterate() -> Row:
        art = depot.Api(a.address, key).artifact(a.artifact)
        t0 = time.perf_counter()
        n = 0
        for _entry in art.files():
            n += 1
            if n % PROGRESS_EVERY == 0:
                _progress(f"iterate: {n} entries")
        wall = time.perf_counter() - t0
        return {"entries": n, "wall_s": round(wall, 3), "entries_per_s": round(n / wall)}

    def get_entry() -> Row:
        sys.path.insert(0, str(HERE))
        import s3sim

        space = s3sim.KeySpace(a.objects, a.layout)
        rng = random.Random(a.seed)
        names = [space.key(rng.randrange(a.objects))[len(root) + 1 :] for _ in range(GET_ENTRY_SAMPLES)]
        art = depot.Api(a.address, key).artifact(a.artifact)
        times = []
        for name in names:
            t0 = time.perf_counter()
            entry = art.get_entry(name)
            times.append(time.perf_counter() - t0)
            if entry.path != name:
                raise AssertionError(f"get_entry({name!r}) answered {entry.path!r}")
        q = statistics.quantiles(times, n=100)
        return {
            "samples": len(times),
            "first_ms": round(times[0] * 1000, 2),
            "p50_ms": round(q[49] * 1000, 3),
            "p99_ms": round(q[98] * 1000, 3),
            "wall_s": round(sum(times), 3),
        }

    def export() -> Row:
        from depot.cli import main as cli

        out = Path(a.out)
        os.environ.update(DEPOT_ADDRESS=a.address, DEPOT_API_KEY=key)
        t0 = time.perf_counter()
        rc = cli(["artifact", "export", a.artifact, "-o", str(out)])
        wall = time.perf_counter() - t0
        if rc != 0:
            raise RuntimeError(f"depot artifact export exited with {rc}")
        return {"wall_s": round(wall, 3), "bytes": out.stat().st_size}

    def download() -> Row:
        art = depot.Api(a.address, key).artifact(a.artifact)
        target = Path(a.out)
        t0 = time.perf_counter()
        art.download(target)
        wall = time.perf_counter() - t0
        files = nbytes = 0
        for dirpath, _dirs, names in os.walk(target):
            files += len(names)
            nbytes += sum(os.path.getsize(os.path.join(dirpath, f)) for f in names)
        return {"downloaded": files, "bytes": nbytes, "wall_s": round(wall, 3), "objects_per_s": round(files / wall)}

    steps = {
        "e2e-log": log_reference,
        "e2e-iterate": iterate,
        "e2e-get-entry": get_entry,
        "e2e-export": export,
        "e2e-download": download,
    }
    return _client_row(steps[a.child])


def _tree_rss_bytes(root: int) -> int:
    """Resident bytes of ``root`` and its descendants now (Linux /proc; 0 once it is gone)."""
    parent: dict[int, int] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                parent[int(d.name)] = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo += [c for c, p in parent.items() if p == pid]
    total = 0
    for pid in tree:
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    return total


class PeakRss:
    """Samples a process tree's RSS in a thread; ``take()`` returns the peak since the last take."""

    def __init__(self, pid: int, interval_s: float = 0.2) -> None:
        self.pid = pid
        self.interval_s = interval_s
        self._peak = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="peak-rss", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            rss = _tree_rss_bytes(self.pid)
            with self._lock:
                self._peak = max(self._peak, rss)

    def take(self) -> float:
        rss = _tree_rss_bytes(self.pid)
        with self._lock:
            peak, self._peak = max(self._peak, rss), 0
        return round(peak / 2**20, 1)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _run_client(a: argparse.Namespace, kind: str, env: dict[str, str], **opts: str) -> Row:
    """One user step in a fresh client process; its JSON line, or the way it died."""
    cmd = [sys.executable, __file__, "--child", kind, "--objects", str(a.objects), "--layout", a.layout]
    cmd += ["--seed", str(a.seed)]
    for k, v in opts.items():
        cmd += ["--" + k.replace("_", "-"), v]
    t0 = time.perf_counter()
    try:
        # stderr is inherited: the SDK's own progress (and ours) shows while it runs.
        out = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True, timeout=a.child_timeout)
    except subprocess.TimeoutExpired:
        return {"wall_s": round(time.perf_counter() - t0, 3), "error": f"timed out after {a.child_timeout} s"}
    lines = out.stdout.strip().splitlines()
    if out.returncode != 0 or not lines:
        return {"wall_s": round(time.perf_counter() - t0, 3), "error": f"client exited with {out.returncode}"}
    row: Row = json.loads(lines[-1])
    return row


def _e2e_run(a: argparse.Namespace, k: int, work: Path) -> list[Row]:
    """One end-to-end run: simulator, library row, server, then every step in --ops."""
    import restarts  # bench/restarts.py: `depot server` as a process

    common = {"bench": "references-e2e", "objects": a.objects, "latency_ms": a.latency_ms, "layout": a.layout}
    common["run"] = k
    rows: list[Row] = []

    def emit(op: str, row: Row) -> Row:
        row = {**common, "op": op, **row}
        rows.append(row)
        print(json.dumps(row), flush=True)
        return row

    _progress(f"run {k}: simulator ({a.objects} objects, {a.latency_ms} ms)")
    sim, endpoint = _start_sim(a)
    try:
        _progress("library-only listing")
        try:
            lib = _run_child(a, "depot", endpoint)
        except subprocess.CalledProcessError as e:
            lib = {"error": f"the library lister exited with {e.returncode}"}
        lib_wall = lib.get("wall_s") if "error" not in lib else None
        emit("library", {**lib, "client_peak_rss_mib": lib.get("peak_rss_mib")})

        data = work / f"server-{k}"
        server = restarts.ServerProcess(data, restarts.free_port(), a.database_url, work / f"server-{k}.log")
        server.env.pop("DEPOT_WORKERS", None)  # the embedded defaults, as a user starts it
        creds = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}
        server.env.update(
            creds, DEPOT_REFERENCE_S3_ENDPOINT_URL=endpoint, DEPOT_REFERENCE_BUCKETS=f"{BUCKET},{DOWNLOAD_BUCKET}"
        )
        _progress("depot server")
        server.start()
        rss = PeakRss(server.proc.pid if server.proc else 0)
        client_env = {k_: v for k_, v in os.environ.items() if not k_.startswith("DEPOT_")}
        client_env.update(creds, DEPOT_REFERENCE_S3_ENDPOINT_URL=endpoint, DEPOT_CACHE_DIR=str(work / f"cache-{k}"))
        conn = {"address": server.address, "key_file": str(data / "admin.key")}
        try:
            rss.take()
            artifact = ""
            if "log_reference" in a.ops:
                _progress(f"log_reference: add_reference(s3://{BUCKET}/…) + log_artifact().wait()")
                row = _run_client(a, "e2e-log", client_env, **conn, artifact="refs", bucket=BUCKET)
                row["server_peak_rss_mib"] = rss.take()
                if lib_wall and "error" not in row:
                    row["library_wall_s"] = lib_wall
                    row["ratio_vs_library"] = round(row["wall_s"] / lib_wall, 2)
                    row["digest_matches_library"] = row.get("digest") == lib.get("digest")
                artifact = row.get("artifact", "")
                emit("log_reference", row)
            for op, kind in (("iterate", "e2e-iterate"), ("get_entry", "e2e-get-entry"), ("export", "e2e-export")):
                if op not in a.ops:
                    continue
                if not artifact:
                    emit(op, {"error": "no version to read (log_reference did not run or failed)"})
                    continue
                _progress(op)
                out = work / f"export-{k}.json"
                row = _run_client(a, kind, client_env, **conn, artifact=artifact, out=str(out))
                row["server_peak_rss_mib"] = rss.take()
                out.unlink(missing_ok=True)
                emit(op, row)
            if "download" in a.ops:
                _progress(f"download: logging a reference to {a.download_objects} objects (untimed)")
                logged = _run_client(a, "e2e-log", client_env, **conn, artifact="refs-dl", bucket=DOWNLOAD_BUCKET)
                rss.take()
                if "error" in logged:
                    emit("download", {"downloaded": 0, "error": "logging the reference failed: " + logged["error"]})
                else:
                    _progress("download: cold cache, empty directory")
                    target = work / f"download-{k}"
                    row = _run_client(
                        a, "e2e-download", client_env, **conn, artifact=logged["artifact"], out=str(target)
                    )
                    row["server_peak_rss_mib"] = rss.take()
                    row["cold_cache"] = True
                    if "error" in row:  # how far it got: files that arrived before the error or timeout
                        row["downloaded"] = sum(len(files) for _d, _s, files in os.walk(target))
                    shutil.rmtree(target, ignore_errors=True)
                    emit("download", row)
        finally:
            rss.stop()
            server.stop()
            if a.database_url is None:
                from depot.services.allinone.postgres import LocalPostgres

                LocalPostgres.for_data_dir(data).destroy()
    finally:
        sim.terminate()
        sim.wait()
    return rows


_E2E_MEDIANS = (
    "wall_s",
    "client_peak_rss_mib",
    "server_peak_rss_mib",
    "ratio_vs_library",
    "entries_per_s",
    "p50_ms",
    "p99_ms",
    "objects_per_s",
)


def _e2e(a: argparse.Namespace) -> None:
    a.ops = [o.strip() for o in a.ops.split(",") if o.strip()]
    unknown = sorted(set(a.ops) - set(E2E_OPS))
    if unknown:
        raise SystemExit(f"--ops: unknown step(s) {', '.join(unknown)}; choose from {', '.join(E2E_OPS)}")
    runs: list[list[Row]] = []
    seed0 = a.seed
    with tempfile.TemporaryDirectory(prefix="depot-references-e2e-") as tmp:
        for k in range(a.repeat):
            a.seed = seed0 + k
            runs.append(_e2e_run(a, k, Path(tmp)))
    if a.repeat < 2:
        return
    for op in ["library", *a.ops]:
        same = [r for run in runs for r in run if r["op"] == op and "error" not in r]
        if not same:
            continue
        m = dict(same[0], run="median", repeats=len(same))
        for f in _E2E_MEDIANS:
            if all(f in r for r in same):
                m[f] = statistics.median(r[f] for r in same)
        print(json.dumps(m), flush=True)


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
    ap.add_argument("--e2e", action="store_true", help="SDK -> depot server -> committed version, then reads")
    ap.add_argument("--ops", default=",".join(E2E_OPS), help="--e2e steps to run (comma-separated)")
    ap.add_argument("--download-objects", type=int, default=100_000, help="--e2e: referenced objects to download")
    ap.add_argument(
        "--filler-max", type=int, default=65536, help="simulator: filler bytes before the key in a body (0 = key only)"
    )
    ap.add_argument("--database-url", default=None, help="--e2e: default the embedded PostgreSQL")
    ap.add_argument("--child-timeout", type=float, default=7200.0, help="--e2e: seconds one client step may take")
    ap.add_argument("--child", choices=["depot", "baseline", *_E2E_CHILDREN], help=argparse.SUPPRESS)
    ap.add_argument("--endpoint", help=argparse.SUPPRESS)
    for hidden in ("--address", "--key-file", "--artifact", "--bucket", "--out"):
        ap.add_argument(hidden, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)

    if a.child in _E2E_CHILDREN:
        print(json.dumps(_child_e2e(a)), flush=True)
        return
    if a.child:
        fn = _child_depot if a.child == "depot" else _child_baseline
        print(json.dumps(asyncio.run(fn(a))), flush=True)
        return
    if a.e2e:
        _e2e(a)
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

    def median(runs: list[Row]) -> Row:
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

        space = s3sim.KeySpace(a.objects, a.layout, filler_max=a.filler_max)
        strip = len(ROOTS[a.layout]) + 1
        h = hashlib.md5(b"wandb-artifact-manifest-v1\n")
        for key, etag, _s, _v in space.expected_entries():
            h.update(f"{key[strip:]}:{etag}\n".encode())
        dm["digest_verified"] = all(r.get("digest") == h.hexdigest() for r in depot_runs)
    print(json.dumps(dm), flush=True)


if __name__ == "__main__":
    main()
