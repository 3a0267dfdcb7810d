"""The local reference cache: bounded, least-recently-used out first, never a partial file."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import depot
from depot._reference_cache import CacheKey, ReferenceCache, default_reference_cache


def _key(i: int) -> CacheKey:
    return CacheKey(f"s3://b/k{i}", "", f"etag{i}")


def _body(i: int, size: int) -> bytes:
    seed = hashlib.sha256(str(i).encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]


def _put(cache: ReferenceCache, tmp: Path, i: int, size: int) -> bool:
    src = tmp / f"src-{i}-{threading.get_ident()}"
    src.write_bytes(_body(i, size))
    try:
        return cache.put(_key(i), src)
    finally:
        src.unlink()


def _has(cache: ReferenceCache, tmp: Path, i: int) -> bool:
    out = tmp / f"probe-{threading.get_ident()}"
    try:
        return cache.get(_key(i), out)
    finally:
        out.unlink(missing_ok=True)


def test_put_get_roundtrip(tmp_path: Path) -> None:
    cache = ReferenceCache(tmp_path / "c", 1000)
    assert not cache.get(_key(1), tmp_path / "out")
    assert _put(cache, tmp_path, 1, 100)
    assert cache.get(_key(1), tmp_path / "out")
    assert (tmp_path / "out").read_bytes() == _body(1, 100)
    assert cache.total_bytes() == 100
    # The same key again replaces, it does not double count.
    assert _put(cache, tmp_path, 1, 100)
    assert int((tmp_path / "c" / "total").read_text()) == cache.total_bytes() == 100


def test_keys_differ_by_version_and_digest(tmp_path: Path) -> None:
    cache = ReferenceCache(tmp_path / "c", 1000)
    src = tmp_path / "s"
    src.write_bytes(b"v1")
    cache.put(CacheKey("s3://b/k", "v1", "e1"), src)
    assert not cache.get(CacheKey("s3://b/k", "v2", "e1"), tmp_path / "o")
    assert not cache.get(CacheKey("s3://b/k", "v1", "e2"), tmp_path / "o")
    assert cache.get(CacheKey("s3://b/k", "v1", "e1"), tmp_path / "o")


def test_lru_eviction_order(tmp_path: Path) -> None:
    cache = ReferenceCache(tmp_path / "c", 300)
    for i in (1, 2, 3):
        _put(cache, tmp_path, i, 100)
    assert _has(cache, tmp_path, 1)  # 1 is now the most recently used
    _put(cache, tmp_path, 4, 100)
    assert [i for i in (1, 2, 3, 4) if _has(cache, tmp_path, i)] == [1, 3, 4]
    # The probes above read 1, 3, 4 in that order; 150 more bytes evict the two oldest.
    _put(cache, tmp_path, 5, 150)
    assert cache.total_bytes() == 250
    assert [i for i in (1, 2, 3, 4, 5) if _has(cache, tmp_path, i)] == [4, 5]


def test_size_bound_and_oversized_objects(tmp_path: Path) -> None:
    cache = ReferenceCache(tmp_path / "c", 1000)
    assert not _put(cache, tmp_path, 0, 1001), "an object over the bound is never cached"
    for i in range(1, 40):
        _put(cache, tmp_path, i, 97)
        assert cache.total_bytes() <= 1000
    assert int((tmp_path / "c" / "total").read_text()) == cache.total_bytes()
    assert _has(cache, tmp_path, 39) and not _has(cache, tmp_path, 1)


def test_concurrent_puts_and_reads_never_see_partial_files(tmp_path: Path) -> None:
    cache = ReferenceCache(tmp_path / "c", 64 * 1024)
    size = 16 * 1024
    errors: list[BaseException] = []
    stop = threading.Event()

    def writer(w: int) -> None:
        try:
            for n in range(25):
                _put(cache, tmp_path, (w * 25 + n) % 30, size)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    def reader(r: int) -> None:
        out = tmp_path / f"read-{r}"
        try:
            while not stop.is_set():
                for i in range(30):
                    if cache.get(_key(i), out):
                        assert out.read_bytes() == _body(i, size), f"partial or wrong bytes for {i}"
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    readers = [threading.Thread(target=reader, args=(r,)) for r in range(3)]
    writers = [threading.Thread(target=writer, args=(w,)) for w in range(6)]
    for t in readers + writers:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    for t in readers:
        t.join()
    assert not errors, errors
    assert cache.total_bytes() <= 64 * 1024
    assert int((tmp_path / "c" / "total").read_text()) == cache.total_bytes()
    assert list((tmp_path / "c" / "tmp").iterdir()) == [], "no temp files left behind"


_CHILD = """
import sys
from pathlib import Path
from depot._reference_cache import CacheKey, ReferenceCache
cache = ReferenceCache(Path(sys.argv[1]), 20_000)
tag = sys.argv[2]
src = Path(sys.argv[1]).parent / f"src-{tag}"
for i in range(40):
    src.write_bytes(bytes([i]) * 1000)
    cache.put(CacheKey(f"ref-{tag}-{i}", "", "d"), src)
"""


def test_processes_share_one_bound(tmp_path: Path) -> None:
    root = tmp_path / "c"
    ReferenceCache(root, 20_000)
    procs = [subprocess.Popen([sys.executable, "-c", _CHILD, str(root), t]) for t in "ab"]
    assert [p.wait(60) for p in procs] == [0, 0]
    cache = ReferenceCache(root, 20_000)
    assert cache.total_bytes() <= 20_000
    assert int((root / "total").read_text()) == cache.total_bytes()


def test_a_hit_is_always_a_copy(tmp_path: Path) -> None:
    # Two download roots must never share an inode with the cache or each other.
    with pytest.raises(TypeError):
        ReferenceCache(tmp_path / "c", 1000, link=True)  # type: ignore[call-arg]
    cache = ReferenceCache(tmp_path / "c", 1000)
    _put(cache, tmp_path, 1, 10)
    one, two = tmp_path / "one", tmp_path / "two"
    one.write_bytes(b"old")
    assert cache.get(_key(1), one) and cache.get(_key(1), two)
    assert one.read_bytes() == two.read_bytes() == _body(1, 10)
    assert one.stat().st_nlink == two.stat().st_nlink == 1
    assert one.stat().st_ino != two.stat().st_ino


def test_the_cache_directory_is_private(tmp_path: Path) -> None:
    cache = ReferenceCache(tmp_path / "home/.cache/depot/references", 1000)
    for d in (cache.root, cache.root / "tmp", cache.root / "objects"):
        assert d.stat().st_mode & 0o777 == 0o700, d
    assert (tmp_path / "home").stat().st_mode & 0o077, "its parents are made as mkdir -p makes them"
    # A cache an older SDK made readable to all is closed on first use.
    old = tmp_path / "old"
    old.mkdir(mode=0o755)
    old.chmod(0o755)
    ReferenceCache(old, 1000)
    assert old.stat().st_mode & 0o777 == 0o700


def test_clear(tmp_path: Path) -> None:
    cache = ReferenceCache(tmp_path / "c", 1000)
    _put(cache, tmp_path, 1, 10)
    cache.clear()
    assert cache.total_bytes() == 0 and not _has(cache, tmp_path, 1)


def test_default_cache_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DEPOT_CACHE_DIR", str(tmp_path / "envcache"))
    monkeypatch.setenv("DEPOT_CACHE_MAX_BYTES", "12345")
    cache = default_reference_cache()
    assert cache is not None and cache.root == tmp_path / "envcache" and cache.max_bytes == 12345
    monkeypatch.setenv("DEPOT_CACHE_MAX_BYTES", "0")
    assert default_reference_cache() is None
    monkeypatch.setenv("DEPOT_CACHE_MAX_BYTES", "lots")
    with pytest.raises(depot.InvalidArgumentError):
        default_reference_cache()
    monkeypatch.delenv("DEPOT_CACHE_DIR")
    monkeypatch.delenv("DEPOT_CACHE_MAX_BYTES")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    cache = default_reference_cache()
    assert cache is not None
    assert cache.root == tmp_path / "home" / ".cache" / "depot" / "references"
    assert cache.max_bytes == 10 << 30
    assert os.path.isdir(cache.root)
