"""Pure-Python twin of the file hasher (``_hashing.pyx``).

Digests are raw bytes, one per requested algorithm, in the order asked. Both
algorithms are fed from the same reads, so asking for two costs one pass over
the file.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import xxhash

HASH_ALGORITHMS = ("xxh3_128", "md5")
# Big enough that the per-read overhead vanishes, small enough to stay in L2.
CHUNK = 1 << 20


def _check(algorithms: Sequence[str]) -> tuple[str, ...]:
    algs = tuple(algorithms)
    if not algs:
        raise ValueError("at least one hash algorithm is required")
    for a in algs:
        if a not in HASH_ALGORITHMS:
            raise ValueError(f"unknown hash algorithm {a!r}; expected one of {HASH_ALGORITHMS}")
    return algs


def _new(algorithm: str) -> hashlib._Hash | xxhash.xxh3_128:
    return hashlib.md5() if algorithm == "md5" else xxhash.xxh3_128()


def _hash_path(path: str, algs: tuple[str, ...]) -> tuple[bytes, ...]:
    hashers = {a: _new(a) for a in algs}
    with open(path, "rb", buffering=0) as f:
        while True:
            chunk = f.read(CHUNK)
            if not chunk:
                break
            for h in hashers.values():
                h.update(chunk)
    return tuple(hashers[a].digest() for a in algs)


def hash_bytes(data: bytes, algorithms: Sequence[str] = ("xxh3_128",)) -> tuple[bytes, ...]:
    """Raw digests of ``data``, one per algorithm, in the order asked."""
    algs = _check(algorithms)
    return tuple(_digest(a, data) for a in algs)


def _digest(algorithm: str, data: bytes) -> bytes:
    h = _new(algorithm)
    h.update(data)
    return h.digest()


def hash_file(path: str, algorithms: Sequence[str] = ("xxh3_128",)) -> tuple[bytes, ...]:
    """Raw digests of the file at ``path``; OSError (with the path) if it cannot be read."""
    return _hash_path(os.fspath(path), _check(algorithms))


def hash_files(
    paths: Sequence[str], algorithms: Sequence[str] = ("xxh3_128",), threads: int = 0
) -> list[tuple[bytes, ...]]:
    """``hash_file`` over many paths on ``threads`` threads (0 = one per CPU).

    Raises the OSError of the first unreadable path, in list order.
    """
    algs = _check(algorithms)
    plist = [os.fspath(p) for p in paths]
    if threads < 0:
        raise ValueError("threads must be >= 0")
    n = threads or os.cpu_count() or 1
    if n == 1 or len(plist) <= 1:
        return [_hash_path(p, algs) for p in plist]
    with ThreadPoolExecutor(max_workers=min(n, len(plist))) as pool:
        futures = [pool.submit(_hash_path, p, algs) for p in plist]
        return [f.result() for f in futures]
