"""gs:// references end to end: listed by the server, downloaded by the SDK at the recorded generation.

Both sides talk to a real GCS JSON API (fake-gcs-server on loopback) through
``STORAGE_EMULATOR_HOST``, the variable Google's own clients honour.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.entities import create_team
from support.gcs import b64md5, new_bucket, put, wandb_digest
from support.servers import ServerThread, make_config

import depot
from depot._gcs_fetch import GCSFetcher
from depot._manifest import ManifestEntry
from depot._references import ReferenceCache, fetch_reference


@pytest.fixture
def gcs_bucket(gcs_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_endpoint)
    return new_bucket(gcs_endpoint)


@pytest.fixture
def gcs_server(tmp_path: Path, database_url: str, gcs_bucket: str) -> Iterator[ServerThread]:
    cfg = make_config(
        tmp_path / "depot-data",
        database_url,
        (tmp_path / "blobs").as_uri(),
        DEPOT_REFERENCE_BUCKETS=f"gs://{gcs_bucket}",
    )
    srv = ServerThread(cfg).start()
    create_team(srv.address, srv.admin_key, "team")
    yield srv
    srv.stop()


def test_log_download_and_generation_pin(
    gcs_server: ServerThread, gcs_endpoint: str, gcs_bucket: str, tmp_path: Path
) -> None:
    objects = {"data/a.txt": b"alpha", "data/empty": b"", "data/sub/b.bin": b"b" * 1000, "data2/x": b"sibling"}
    gens = {k: put(gcs_endpoint, gcs_bucket, k, v)["generation"] for k, v in objects.items()}
    kw = {"address": gcs_server.address, "api_key": gcs_server.admin_key}
    with depot.init(entity="team", project="p", **kw) as run:
        art = depot.Artifact("gcs-refs", type="dataset")
        art.add_reference(f"gs://{gcs_bucket}/data")
        logged = run.log_artifact(art).wait()
    files = {e.path: e for e in logged.files()}
    mine = {k[len("data/") :]: v for k, v in objects.items() if k.startswith("data/")}
    assert sorted(files) == sorted(mine)
    for path, e in files.items():
        assert (e.algorithm, e.digest, e.size) == ("md5", b64md5(mine[path]), len(mine[path]))
        assert e.version_id == gens["data/" + path]
    # W&B's rule, computed here: md5 over sorted "path:md5Hash" lines.
    assert logged.digest == wandb_digest([(p, b64md5(v)) for p, v in mine.items()])

    out = logged.download(tmp_path / "first")
    assert {p: (out / p).read_bytes() for p in mine} == mine
    # Overwritten since: the download still gets the logged generation.
    put(gcs_endpoint, gcs_bucket, "data/a.txt", b"changed")
    again = logged.download(tmp_path / "second", skip_cache=True)
    assert (again / "a.txt").read_bytes() == b"alpha"


def test_unallowed_bucket_is_refused(gcs_server: ServerThread, gcs_endpoint: str) -> None:
    other = new_bucket(gcs_endpoint)
    put(gcs_endpoint, other, "k", b"v")
    kw = {"address": gcs_server.address, "api_key": gcs_server.admin_key}
    with depot.init(entity="team", project="p", **kw) as run:
        art = depot.Artifact("nope", type="dataset")
        art.add_reference(f"gs://{other}/k")
        with pytest.raises(depot.PermissionDeniedError, match="DEPOT_REFERENCE_BUCKETS"):
            run.log_artifact(art).wait()


def _entry(bucket: str, key: str, data: bytes, generation: str) -> ManifestEntry:
    return ManifestEntry(key, b64md5(data), "md5", len(data), ref=f"gs://{bucket}/{key}", version_id=generation)


def test_fetch_pins_generation_verifies_and_caches(gcs_endpoint: str, tmp_path: Path) -> None:
    bucket = new_bucket(gcs_endpoint)
    gen = put(gcs_endpoint, bucket, "m.bin", b"v1")["generation"]
    put(gcs_endpoint, bucket, "m.bin", b"v2 is longer")
    fetcher = GCSFetcher(gcs_endpoint)
    cache = ReferenceCache(tmp_path / "cache")
    e = _entry(bucket, "m.bin", b"v1", gen)
    assert fetch_reference(e, tmp_path / "a", gcs=fetcher, cache=cache)
    assert (tmp_path / "a").read_bytes() == b"v1"
    # A cache hit: this fetcher reaches nothing, so only the cache can answer.
    dead = GCSFetcher("http://127.0.0.1:9", max_attempts=1)
    assert fetch_reference(e, tmp_path / "b", gcs=dead, cache=cache)
    assert (tmp_path / "b").read_bytes() == b"v1"
    # A wrong digest is caught.
    bad = _entry(bucket, "m.bin", b"v2", gen)  # same size, another md5
    with pytest.raises(depot.DigestMismatchError):
        fetch_reference(bad, tmp_path / "c", gcs=fetcher)


def test_generation_gone_is_a_clear_missing_error(gcs_endpoint: str, tmp_path: Path) -> None:
    bucket = new_bucket(gcs_endpoint, versioning=False)
    gen = put(gcs_endpoint, bucket, "m.bin", b"v1")["generation"]
    put(gcs_endpoint, bucket, "m.bin", b"v2")  # no versioning: v1's generation is gone
    e = _entry(bucket, "m.bin", b"v1", gen)
    fetcher = GCSFetcher(gcs_endpoint)
    with pytest.raises(depot.NotFoundError, match=f"generation {gen} does not exist"):
        fetch_reference(e, tmp_path / "a", gcs=fetcher)
    assert not fetch_reference(e, tmp_path / "a", gcs=fetcher, allow_missing=True)


def test_denied_object_is_a_clear_permission_error(tmp_path: Path) -> None:
    import gcssim  # bench/gcssim.py

    with gcssim.start_gcs_simulator(objects=5, layout="flat", denied=("locked",)) as sim:
        key = "flat/obj-00000001.bin"
        e = ManifestEntry("x", b64md5(b"?"), "md5", 1, ref=f"gs://locked/{key}")
        with pytest.raises(depot.PermissionDeniedError, match=r"access denied by GCS \(HTTP 403 forbidden"):
            fetch_reference(e, tmp_path / "a", gcs=GCSFetcher(sim.endpoint_url))


def test_no_google_credentials_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    e = ManifestEntry("x", b64md5(b"?"), "md5", 1, ref="gs://b/k", version_id="1")
    with pytest.raises(depot.PermissionDeniedError, match="no Google credentials found"):
        fetch_reference(e, tmp_path / "a", gcs=GCSFetcher())
