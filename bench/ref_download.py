"""Downloading many referenced S3 objects through ``fetch_reference``: objects/s and client RSS.

Issue 11's target: 100,000 objects from the S3 simulator with a cold cache at
>= 5,000 objects/s, client peak RSS <= 512 MiB, every byte verified (md5
against the entry's ETag, as for any single-part S3 object).

The simulator runs as its own process (``bench/s3sim.py``), so its CPU is
not this process's GIL. Entries carry the md5 of the body the simulator
serves, computed here from its key formula. Each object goes the way the
SDK's download goes: a temp file beside its destination, ``fetch_reference``,
a rename; a bounded number of fetches in flight (never a future per entry).

Rows (JSON lines): ``cold`` (empty cache: every object fetched, verified,
adopted by the cache), ``warm`` (every object a verified cache hit), and
``nocache`` (no cache at all).

Use::

    python bench/ref_download.py --objects 100000 --threads 16
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import s3sim  # noqa: E402  (bench/s3sim.py, beside this file)

from depot import ManifestEntry  # noqa: E402
from depot._copying import new_temp_in  # noqa: E402
from depot._reference_cache import ReferenceCache  # noqa: E402
from depot._references import fetch_reference  # noqa: E402
from depot._s3_fetch import S3Fetcher  # noqa: E402

BUCKET = "bench"


def _digests(n: int) -> list[str]:
    """The md5 of every body, computed before the clock starts (the SDK reads them from the manifest)."""
    space = s3sim.KeySpace(n, "nested")
    return [hashlib.md5(space.body(i)).hexdigest() for i in range(n)]


def _entries(digests: list[str]) -> Iterator[ManifestEntry]:
    space = s3sim.KeySpace(len(digests), "nested")
    for i, digest in enumerate(digests):
        key = space.key(i)
        yield ManifestEntry(key, digest, "etag", space.size(i), ref=f"s3://{BUCKET}/{key}")


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _fetch_one(e: ManifestEntry, root: Path, s3: S3Fetcher, cache: ReferenceCache | None) -> int:
    dest = root / e.path
    dest.parent.mkdir(parents=True, exist_ok=True)
    # A temp file beside the destination, made the way the SDK's download makes it.
    dir_fd = os.open(dest.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        name, fd = new_temp_in(dir_fd)
        os.close(fd)
    finally:
        os.close(dir_fd)
    tmp = dest.parent / name
    try:
        if not fetch_reference(e, tmp, cache=cache, s3=s3):
            raise RuntimeError(f"{e.path} missing")
        os.replace(tmp, dest)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return e.size


def _run(
    name: str, digests: list[str], threads: int, root: Path, s3: S3Fetcher, cache: ReferenceCache | None
) -> dict[str, object]:
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    in_flight = threading.BoundedSemaphore(threads * 4)
    done_bytes = 0
    errors: list[BaseException] = []
    cpu0, t0 = _cpu_s(), time.perf_counter()

    def finished(f: concurrent.futures.Future[int]) -> None:
        nonlocal done_bytes
        in_flight.release()
        if f.exception() is not None:
            errors.append(f.exception())  # type: ignore[arg-type]
        else:
            done_bytes += f.result()

    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        for e in _entries(digests):
            in_flight.acquire()
            pool.submit(_fetch_one, e, root, s3, cache).add_done_callback(finished)
            if errors:
                break
    wall = time.perf_counter() - t0
    if errors:
        raise errors[0]
    n = len(digests)
    return {
        "bench": "ref_download",
        "row": name,
        "objects": n,
        "threads": threads,
        "wall_s": round(wall, 3),
        "objects_per_s": round(n / wall),
        "mb_per_s": round(done_bytes / wall / 1e6, 1),
        "client_cpu_s": round(_cpu_s() - cpu0, 2),
        "client_peak_rss_mib": round(_rss_mib(), 1),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--objects", type=int, default=100_000)
    ap.add_argument("--threads", type=int, default=16)
    ap.add_argument("--rows", default="cold,warm,nocache")
    ap.add_argument("--dir", default="", help="scratch directory (default: a temp dir)")
    a = ap.parse_args(argv)
    sim = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("s3sim.py")), "--objects", str(a.objects), "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    scratch = Path(a.dir or tempfile.mkdtemp(prefix="ref-download-"))
    try:
        assert sim.stdout is not None
        endpoint = sim.stdout.readline().strip()
        s3 = S3Fetcher(endpoint)
        cache = ReferenceCache(scratch / "cache", 1 << 40)
        digests = _digests(a.objects)
        for row in a.rows.split(","):
            if row == "cold":
                cache.clear()
            result = _run(row, digests, a.threads, scratch / "out", s3, None if row == "nocache" else cache)
            print(json.dumps(result), flush=True)
    finally:
        sim.terminate()
        sim.wait(10)
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1:])
