import hashlib
import os
from pathlib import Path

import pytest
import xxhash
from hypothesis import given, settings
from hypothesis import strategies as st
from support.native_impls import IMPLS, Impl


def _ref(data: bytes) -> tuple[bytes, bytes]:
    return xxhash.xxh3_128(data).digest(), hashlib.md5(data).digest()


def test_empty_vectors(impl: Impl) -> None:
    assert impl.hashing.hash_bytes(b"", ("md5",)) == (hashlib.md5(b"").digest(),)
    assert impl.hashing.hash_bytes(b"", ("md5",))[0].hex() == "d41d8cd98f00b204e9800998ecf8427e"
    assert impl.hashing.hash_bytes(b"") == (xxhash.xxh3_128(b"").digest(),)


@pytest.mark.parametrize("n", [0, 1, 55, 56, 63, 64, 65, 4096, (1 << 20) - 1, 1 << 20, (1 << 20) + 1, 3 << 20])
def test_file_sizes(impl: Impl, tmp_path: Path, n: int) -> None:
    data = os.urandom(n)
    p = tmp_path / "f"
    p.write_bytes(data)
    x, m = _ref(data)
    assert impl.hashing.hash_file(str(p), ("md5", "xxh3_128")) == (m, x)
    assert impl.hashing.hash_file(p) == (x,)
    assert impl.hashing.hash_bytes(data, ("xxh3_128", "md5")) == (x, m)


def test_hash_files_many(impl: Impl, tmp_path: Path) -> None:
    paths = []
    for i in range(300):
        p = tmp_path / f"f{i}"
        p.write_bytes(os.urandom(i * 37))
        paths.append(str(p))
    want = [_ref(Path(p).read_bytes())[::-1] for p in paths]
    for threads in (0, 1, 3):
        assert impl.hashing.hash_files(paths, ("md5", "xxh3_128"), threads=threads) == want
    assert impl.hashing.hash_files([]) == []


def test_errors(impl: Impl, tmp_path: Path) -> None:
    missing = str(tmp_path / "missing")
    with pytest.raises(FileNotFoundError) as e:
        impl.hashing.hash_file(missing)
    assert e.value.filename == missing
    ok = tmp_path / "ok"
    ok.write_bytes(b"x")
    with pytest.raises(FileNotFoundError) as e:
        impl.hashing.hash_files([str(ok), missing, str(tmp_path / "other")])
    assert e.value.filename == missing
    with pytest.raises(IsADirectoryError):
        impl.hashing.hash_file(str(tmp_path))
    with pytest.raises(ValueError):
        impl.hashing.hash_bytes(b"", ("sha1",))
    with pytest.raises(ValueError):
        impl.hashing.hash_bytes(b"", ())


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=5000), st.lists(st.sampled_from(["md5", "xxh3_128"]), min_size=1, max_size=3))
def test_agree_bytes(data: bytes, algs: list[str]) -> None:
    results = {impl.hashing.hash_bytes(data, tuple(algs)) for impl in IMPLS}
    assert len(results) == 1
    x, m = _ref(data)
    assert results.pop() == tuple(x if a == "xxh3_128" else m for a in algs)
