"""A cached reference is served only if its bytes are still the verified ones.

A size check alone passes a same-size rewrite of the cached file (disk
error, an edit through a hard-linked download, anyone writing into the cache
directory); the bytes must be re-hashed before they are handed out, and a
file that fails is evicted and fetched again.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import xxhash
from support.http_files import FileServer, Served

import depot
from depot import ManifestEntry
from depot._references import CacheKey, ReferenceCache, fetch_reference
from depot.native import hash_bytes

BODY = b"the verified bytes of a referenced file\n"
POISON = b"X" * len(BODY)


def _xxh3(data: bytes) -> str:
    (raw,) = hash_bytes(data, ("xxh3_128",))
    return base64.b64encode(raw).decode()


def _cached_file(cache: ReferenceCache, e: ManifestEntry) -> Path:
    return cache._path(CacheKey(e.ref, e.version_id, e.digest))


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    p = tmp_path / "out" / ".depot-tmp"
    p.parent.mkdir()
    return p


@pytest.mark.parametrize("etag", ['"v1"', None], ids=["http-etag", "content-digest"])
def test_poisoned_hit_is_evicted_and_fetched_again(
    http_files: FileServer, tmp_path: Path, dest: Path, etag: str | None
) -> None:
    cache = ReferenceCache(tmp_path / "cache", 1 << 20)
    http_files.files["/f"] = Served(BODY, etag=etag)
    if etag:
        # An http ETag is no hash of the bytes: only the cache's own record can tell.
        e = ManifestEntry("f", "v1", "etag", len(BODY), ref=http_files.url("f"))
    else:
        e = ManifestEntry("f", _xxh3(BODY), "xxh3_128", len(BODY), ref=http_files.url("f"))
    assert fetch_reference(e, dest, cache=cache)
    cached = _cached_file(cache, e)
    assert cached.read_bytes() == BODY
    cached.write_bytes(POISON)

    gets = len(http_files.requests)
    assert fetch_reference(e, dest, cache=cache)
    assert dest.read_bytes() == BODY
    assert len(http_files.requests) == gets + 1, "the poisoned hit was not served: the source was asked again"
    assert cached.read_bytes() == BODY, "the re-fetched, verified bytes replaced the poisoned ones"


def test_poisoned_hit_with_the_source_gone_is_a_clear_error(http_files: FileServer, tmp_path: Path, dest: Path) -> None:
    cache = ReferenceCache(tmp_path / "cache", 1 << 20)
    http_files.files["/g"] = Served(BODY, etag='"g1"')
    e = ManifestEntry("g", "g1", "etag", len(BODY), ref=http_files.url("g"))
    assert fetch_reference(e, dest, cache=cache)
    _cached_file(cache, e).write_bytes(POISON)
    del http_files.files["/g"]
    with pytest.raises(depot.NotFoundError, match="/g"):
        fetch_reference(e, dest, cache=cache)
    assert not _cached_file(cache, e).exists(), "the poisoned object is evicted"
    assert cache.total_bytes() == 0
    assert int((tmp_path / "cache" / "total").read_text()) == 0


def test_digest_record_rewritten_too_is_caught_by_the_entry_digest(
    http_files: FileServer, tmp_path: Path, dest: Path
) -> None:
    # Whoever rewrote the object also rewrote the cache's record of it: an
    # entry with a content digest still decides.
    cache = ReferenceCache(tmp_path / "cache", 1 << 20)
    http_files.files["/h"] = Served(BODY)
    e = ManifestEntry("h", _xxh3(BODY), "xxh3_128", len(BODY), ref=http_files.url("h"))
    assert fetch_reference(e, dest, cache=cache)
    cached = _cached_file(cache, e)
    cached.write_bytes(POISON)
    import xxhash

    cached.with_name(cached.name + ".xxh3").write_bytes(xxhash.xxh3_128(POISON).digest())
    assert fetch_reference(e, dest, cache=cache)
    assert dest.read_bytes() == BODY
    assert cached.read_bytes() == BODY


def test_an_edit_through_a_hard_linked_download_is_not_served(tmp_path: Path) -> None:
    cache = ReferenceCache(tmp_path / "cache", 1 << 20)
    first = tmp_path / "first"
    first.write_bytes(BODY)
    key = CacheKey("s3://b/k", "", "etag")
    assert cache.adopt(key, first, xxhash.xxh3_128(BODY).digest())  # the download, linked into the cache
    first.write_bytes(POISON)  # in place: the cached copy changes with it
    assert not cache.get(key, tmp_path / "second")
    assert (tmp_path / "second").read_bytes() == b"", "a miss leaves dest empty, never the edited bytes"
    assert cache.total_bytes() == 0


def test_copy_mode_leaves_no_wrong_bytes_at_dest(tmp_path: Path) -> None:
    cache = ReferenceCache(tmp_path / "cache", 1 << 20)
    src = tmp_path / "src"
    src.write_bytes(BODY)
    key = CacheKey("s3://b/k", "", "etag")
    assert cache.put(key, src)
    cache._path(key).write_bytes(POISON)
    out = tmp_path / "out"
    assert not cache.get(key, out)
    assert out.read_bytes() == b""


def test_an_object_without_a_digest_record_is_a_miss(tmp_path: Path) -> None:
    # Caches written before objects carried their digest: never trusted.
    cache = ReferenceCache(tmp_path / "cache", 1 << 20)
    src = tmp_path / "src"
    src.write_bytes(BODY)
    key = CacheKey("s3://b/k", "", "etag")
    assert cache.put(key, src)
    path = cache._path(key)
    path.with_name(path.name + ".xxh3").unlink()
    assert not cache.get(key, tmp_path / "out")
    assert not path.exists()


def test_sdk_download_through_a_poisoned_cache(
    server, http_files: FileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEPOT_CACHE_DIR", str(tmp_path / "cache"))
    http_files.files["/data.bin"] = Served(BODY, etag='"d1"')
    kw = {"address": server.address, "api_key": server.admin_key}
    with depot.init(project="p", job_type="t", **kw) as run:
        art = depot.Artifact("web", type="dataset")
        art.add_reference(http_files.url("data.bin"))
        logged = run.log_artifact(art).wait()
    got = depot.Api(**kw).artifact(logged.qualified_name)
    assert (got.download(tmp_path / "one") / "data.bin").read_bytes() == BODY

    cache = ReferenceCache(tmp_path / "cache")
    (entry,) = got.files()
    cached = _cached_file(cache, entry)
    assert cached.read_bytes() == BODY, "the first download filled the cache"
    cached.write_bytes(POISON)

    assert (got.download(tmp_path / "two") / "data.bin").read_bytes() == BODY
    assert cached.read_bytes() == BODY

    # With the source gone as well: a clear error, and nothing poisoned left.
    cached.write_bytes(POISON)
    del http_files.files["/data.bin"]
    with pytest.raises(depot.NotFoundError):
        got.download(tmp_path / "three")
    assert not cached.exists()
    assert not (tmp_path / "three" / "data.bin").exists()


def test_download_replaces_a_same_size_wrong_file_in_the_target(server, tmp_path: Path) -> None:
    kw = {"address": server.address, "api_key": server.admin_key}
    src = tmp_path / "w.bin"
    src.write_bytes(BODY)
    with depot.init(project="p", job_type="t", **kw) as run:
        art = depot.Artifact("m", type="model")
        art.add_file(src)
        ref = depot.Artifact("r", type="model")
        ref.add_reference(src.as_uri())
        logged = [run.log_artifact(a).wait() for a in (art, ref)]
    for a in logged:
        root = tmp_path / f"out-{a.name}"
        root.mkdir()
        (root / "w.bin").write_bytes(POISON)
        depot.Api(**kw).artifact(a.qualified_name).download(root)
        assert (root / "w.bin").read_bytes() == BODY


def test_a_same_size_edit_after_add_file_is_named(server, tmp_path: Path) -> None:
    # Small files ride inline: their bytes are re-hashed here, not trusted by size.
    src = tmp_path / "small.txt"
    src.write_bytes(BODY)
    art = depot.Artifact("edited", type="dataset")
    art.add_file(src)
    src.write_bytes(POISON)
    with depot.init(project="p", address=server.address, api_key=server.admin_key) as run:
        with pytest.raises(depot.DigestMismatchError, match=f"{src.name} changed after it was added"):
            run.log_artifact(art).wait()
