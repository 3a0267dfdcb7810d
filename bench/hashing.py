"""File-hashing benchmark: depot.native.hash_files against hashlib/xxhash called per file.

Prints one JSON object per line (median of --repeat runs). Files are written to
a temp dir and read once before timing, so they come from the page cache.

    python bench/hashing.py            # 10k x 4 KiB, 1k x 1 MiB, 4 x 256 MiB
    python bench/hashing.py --quick    # smaller sizes, same cases
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable

import xxhash

from depot.native import HASHING_COMPILED, hash_files


def _make(root: str, name: str, count: int, size: int) -> list[str]:
    d = os.path.join(root, name)
    os.makedirs(d)
    block = os.urandom(min(size, 1 << 20))
    paths = []
    for i in range(count):
        p = os.path.join(d, f"{i:06d}")
        with open(p, "wb") as f:
            left = size
            while left:
                n = min(left, len(block))
                f.write(block[:n])
                left -= n
        paths.append(p)
    return paths


def _per_file(factory: Callable[[], hashlib._Hash | xxhash.xxh3_128]) -> Callable[[list[str]], None]:
    def run(paths: list[str]) -> None:
        for p in paths:
            h = factory()
            with open(p, "rb", buffering=0) as f:
                while chunk := f.read(1 << 20):
                    h.update(chunk)
            h.digest()

    return run


def _median_wall(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller files, for a smoke run")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="hash_files threads (0 = one per CPU)")
    args = ap.parse_args()
    cases = (
        [("small", 2000, 4096), ("medium", 100, 1 << 20), ("large", 2, 32 << 20)]
        if args.quick
        else [("small", 10_000, 4096), ("medium", 1000, 1 << 20), ("large", 4, 256 << 20)]
    )
    with tempfile.TemporaryDirectory(prefix="depot-bench-") as root:
        for case, count, size in cases:
            paths = _make(root, case, count, size)
            total = count * size
            impls: list[tuple[str, Callable[[], object]]] = [
                ("hashlib.md5/file", lambda: _per_file(hashlib.md5)(paths)),
                ("xxhash.xxh3_128/file", lambda: _per_file(xxhash.xxh3_128)(paths)),
                ("native.md5", lambda: hash_files(paths, ("md5",), args.threads)),
                ("native.xxh3_128", lambda: hash_files(paths, ("xxh3_128",), args.threads)),
                ("native.md5/1thread", lambda: hash_files(paths, ("md5",), 1)),
                ("native.xxh3_128/1thread", lambda: hash_files(paths, ("xxh3_128",), 1)),
            ]
            hash_files(paths, ("xxh3_128",))  # warm the page cache
            baseline: dict[str, float] = {}
            for name, fn in impls:
                wall = _median_wall(fn, args.repeat)
                alg = "md5" if "md5" in name else "xxh3_128"
                if "/file" in name:
                    baseline[alg] = wall
                print(
                    json.dumps(
                        {
                            "impl": name,
                            "compiled": HASHING_COMPILED,
                            "case": case,
                            "files": count,
                            "bytes": total,
                            "wall_s": round(wall, 5),
                            "files_per_s": round(count / wall),
                            "gb_per_s": round(total / wall / 1e9, 3),
                            "ratio_vs_baseline": round(baseline[alg] / wall, 2),
                            "cpus": os.cpu_count(),
                        }
                    ),
                    flush=True,
                )
            for p in paths:
                os.unlink(p)


if __name__ == "__main__":
    main()
