"""S3 reference downloads over the lean GET path, against the S3 simulator (bench/s3sim.py).

The expected bytes and digests are computed here from the simulator's key
formula (``KeySpace.body``), not from anything the simulator or Depot says.
"""

from __future__ import annotations

import gc
import hashlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import s3sim  # bench/s3sim.py (bench/ is on pythonpath)

import depot
from depot import ManifestEntry
from depot._reference_cache import CacheKey, ReferenceCache
from depot._references import fetch_reference
from depot._s3_fetch import S3Fetcher

BUCKET = "refs"


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    p = tmp_path / "out" / ".depot-tmp"
    p.parent.mkdir()
    return p


@pytest.fixture
def sim() -> Iterator[s3sim.SimulatorThread]:
    with s3sim.start_simulator(objects=300, layout="nested") as sim:
        yield sim


def _entry(space: s3sim.KeySpace, i: int, *, version_id: str = "", digest: str | None = None) -> ManifestEntry:
    key = space.key(i)
    body = space.body(i)
    return ManifestEntry(
        key,
        digest if digest is not None else hashlib.md5(body).hexdigest(),
        "etag",
        len(body),
        ref=f"s3://{BUCKET}/{key}",
        version_id=version_id,
    )


def test_objects_arrive_verified(sim: s3sim.SimulatorThread, dest: Path) -> None:
    s3 = S3Fetcher(sim.endpoint_url)
    space = sim.sim.space
    for i in (0, 1, 2, 150):  # 0 is a zero-byte object
        assert fetch_reference(_entry(space, i), dest, s3=s3)
        assert dest.read_bytes() == space.body(i)
    assert sim.stats.requests == 4, "one GET per object, no retries"


def test_bytes_that_differ_from_the_recorded_etag_are_refused(sim: s3sim.SimulatorThread, dest: Path) -> None:
    s3 = S3Fetcher(sim.endpoint_url)
    e = _entry(sim.sim.space, 5, digest=hashlib.md5(b"other bytes").hexdigest())
    with pytest.raises(depot.DigestMismatchError, match="does not match its recorded ETag") as err:
        fetch_reference(e, dest, s3=s3)
    assert err.value.field == e.path
    short = ManifestEntry(e.path, e.digest, "etag", e.size + 1, ref=e.ref)
    with pytest.raises(depot.DigestMismatchError, match="bytes"):
        fetch_reference(short, dest, s3=s3)


def test_missing_object_with_and_without_allow_missing(sim: s3sim.SimulatorThread, dest: Path) -> None:
    s3 = S3Fetcher(sim.endpoint_url)
    e = ManifestEntry("nope", "0" * 32, "etag", 1, ref=f"s3://{BUCKET}/dataset/nope.bin")
    assert fetch_reference(e, dest, s3=s3, allow_missing=True) is False
    with pytest.raises(depot.NotFoundError, match=f"s3://{BUCKET}/dataset/nope.bin"):
        fetch_reference(e, dest, s3=s3)


def test_versioned_objects(dest: Path) -> None:
    with s3sim.start_simulator(objects=30, layout="flat", versioned=True, delete_every=3) as sim:
        s3 = S3Fetcher(sim.endpoint_url)
        space = sim.sim.space
        live, deleted = 0, 2  # delete_every=3: object 2 has a delete marker over its version
        for i in (live, deleted):
            pinned = _entry(space, i, version_id=space.version_id_of(space.key(i)))
            assert fetch_reference(pinned, dest, s3=s3), "the recorded version, even under a delete marker"
            assert dest.read_bytes() == space.body(i)
        assert fetch_reference(_entry(space, live), dest, s3=s3)
        assert fetch_reference(_entry(space, deleted), dest, s3=s3, allow_missing=True) is False
        other = _entry(space, live, version_id="not-the-recorded-one")
        with pytest.raises(depot.NotFoundError, match="version not-the-recorded-one"):
            fetch_reference(other, dest, s3=s3)
        # A version id carried in the URI (as W&B writes it) is honoured too.
        vid = space.version_id_of(space.key(live))
        plain = _entry(space, live)
        in_uri = ManifestEntry(plain.path, plain.digest, "etag", plain.size, ref=f"{plain.ref}?versionId={vid}")
        assert fetch_reference(in_uri, dest, s3=s3)


@pytest.mark.parametrize("fault", ["slowdown_rate", "error500_rate", "reset_rate"])
def test_transient_faults_are_retried(fault: str, tmp_path: Path) -> None:
    with s3sim.start_simulator(objects=100, layout="flat", seed=7, **{fault: 0.3}) as sim:
        s3 = S3Fetcher(sim.endpoint_url, max_attempts=10)
        space = sim.sim.space
        for i in range(40):
            out = tmp_path / f"o{i}"
            assert fetch_reference(_entry(space, i), out, s3=s3)
            assert out.read_bytes() == space.body(i)
        st = sim.stats
        assert st.slowdowns + st.errors500 + st.resets > 0, "the faults happened"
        assert st.requests > 40, "and were retried"


def test_a_bucket_that_keeps_throttling_fails_bounded_and_named(dest: Path) -> None:
    with s3sim.start_simulator(objects=10, layout="flat", slowdown_rate=1.0) as sim:
        s3 = S3Fetcher(sim.endpoint_url, max_attempts=3)
        e = _entry(sim.sim.space, 1)
        with pytest.raises(depot.CommError, match=rf"{e.ref}: S3 answered HTTP 503 SlowDown \(3 attempts\)"):
            fetch_reference(e, dest, s3=s3)
        assert sim.stats.requests == 3


def test_access_denied_names_the_object(dest: Path) -> None:
    with s3sim.start_simulator(objects=10, layout="flat", access_denied_rate=1.0) as sim:
        s3 = S3Fetcher(sim.endpoint_url)
        e = _entry(sim.sim.space, 1)
        with pytest.raises(depot.PermissionDeniedError, match=rf"{e.ref}: access denied by S3 \(AccessDenied\)"):
            fetch_reference(e, dest, s3=s3, allow_missing=True)
        assert sim.stats.requests == 1, "a refusal is an answer, not retried"


def test_cold_fetch_is_adopted_by_the_cache_without_a_copy(
    sim: s3sim.SimulatorThread, dest: Path, tmp_path: Path
) -> None:
    cache = ReferenceCache(tmp_path / "cache", 1 << 20)
    s3 = S3Fetcher(sim.endpoint_url)
    e = _entry(sim.sim.space, 3)
    assert fetch_reference(e, dest, s3=s3, cache=cache)
    cached = cache._path(CacheKey(e.ref, e.version_id, e.digest))
    assert os.path.samefile(cached, dest), "the verified download itself, hard-linked"
    assert cache.total_bytes() == e.size

    # An in-place edit of the download reaches the cached object through the
    # link: the next hit must notice, evict it and fetch again.
    requests = sim.stats.requests
    dest.write_bytes(b"Z" * e.size)
    again = tmp_path / "again"
    assert fetch_reference(e, again, s3=s3, cache=cache)
    assert again.read_bytes() == sim.sim.space.body(3)
    assert sim.stats.requests == requests + 1
    # A hit now serves without asking S3.
    assert fetch_reference(e, tmp_path / "third", s3=s3, cache=cache)
    assert sim.stats.requests == requests + 1


def test_a_poisoned_hit_and_record_is_caught_by_the_etag(
    sim: s3sim.SimulatorThread, dest: Path, tmp_path: Path
) -> None:
    # Whoever rewrote the cached bytes also rewrote the cache's own xxh3
    # record: the md5 ETag of the entry still decides.
    import xxhash

    cache = ReferenceCache(tmp_path / "cache", 1 << 20)
    s3 = S3Fetcher(sim.endpoint_url)
    e = _entry(sim.sim.space, 4)
    assert fetch_reference(e, dest, s3=s3, cache=cache)
    cached = cache._path(CacheKey(e.ref, e.version_id, e.digest))
    poison = b"P" * e.size
    cached.unlink()  # not through the link: dest keeps the good bytes
    cached.write_bytes(poison)
    cached.with_name(cached.name + ".xxh3").write_bytes(xxhash.xxh3_128(poison).digest())
    out = tmp_path / "out2"
    assert fetch_reference(e, out, s3=s3, cache=cache)
    assert out.read_bytes() == sim.sim.space.body(4)


def test_threads_share_one_fetcher_and_one_cache(sim: s3sim.SimulatorThread, tmp_path: Path) -> None:
    cache = ReferenceCache(tmp_path / "cache", 1 << 30)
    s3 = S3Fetcher(sim.endpoint_url)
    space = sim.sim.space
    errors: list[BaseException] = []

    def work(t: int, cache: ReferenceCache) -> None:
        try:
            for i in range(t, space.n, 8):
                out = tmp_path / f"t{i}"
                assert fetch_reference(_entry(space, i), out, s3=s3, cache=cache)
                assert out.read_bytes() == space.body(i)
        except BaseException as e:  # reported below, with the thread's failure
            errors.append(e)

    for round_ in ("cold", "warm"):
        threads = [threading.Thread(target=work, args=(t, cache)) for t in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert not errors, (round_, errors)
        for p in tmp_path.glob("t*"):
            p.unlink()
    assert sim.stats.requests == space.n, "the warm round came from the cache"
    # A large cache batches its running total (1/64 of the bound); the
    # finalizer adds what was batched when the cache goes away.
    assert cache._pending[0] > 0
    del cache
    gc.collect()
    assert int((tmp_path / "cache" / "total").read_text()) == ReferenceCache(tmp_path / "cache").total_bytes() > 0
