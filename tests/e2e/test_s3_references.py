"""s3:// references through the SDK: listed server-side, merged with files."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from support.entities import create_team
from support.servers import ServerThread, make_config

import depot


@pytest.fixture
def ref_server(tmp_path: Path, database_url: str, s3_endpoint: str, s3_bucket: str) -> Iterator[ServerThread]:
    cfg = make_config(
        tmp_path / "depot-data",
        database_url,
        (tmp_path / "blobs").as_uri(),
        DEPOT_S3_ENDPOINT_URL=s3_endpoint,
        DEPOT_REFERENCE_BUCKETS=s3_bucket,
    )
    srv = ServerThread(cfg).start()
    create_team(srv.address, srv.admin_key, "team")
    yield srv
    srv.stop()


def _put(endpoint: str, bucket: str, objects: dict[str, bytes]) -> None:
    s3 = boto3.client("s3", endpoint_url=endpoint)
    for k, v in objects.items():
        s3.put_object(Bucket=bucket, Key=k, Body=v)


def _wandb_digest(entries: dict[str, str]) -> str:
    h = hashlib.md5(b"wandb-artifact-manifest-v1\n")
    for path in sorted(entries, key=str.encode):
        h.update(f"{path}:{entries[path]}\n".encode())
    return h.hexdigest()


def test_s3_prefix_reference_round_trip(ref_server, s3_endpoint, s3_bucket, tmp_path) -> None:
    objects = {"data/a.txt": b"a", "data/sub/b.txt": b"bb", "data-old/x": b"no", "data.csv": b"no"}
    _put(s3_endpoint, s3_bucket, objects)
    kw = {"address": ref_server.address, "api_key": ref_server.admin_key}
    with depot.init(entity="team", project="p", **kw) as run:
        art = depot.Artifact("refs", type="dataset")
        art.add_reference(f"s3://{s3_bucket}/data")
        first = run.log_artifact(art).wait()
        again = depot.Artifact("refs", type="dataset")
        again.add_reference(f"s3://{s3_bucket}/data")
        assert run.log_artifact(again).wait().version == "v0"
        _put(s3_endpoint, s3_bucket, {"data/a.txt": b"changed"})
        changed = depot.Artifact("refs", type="dataset")
        changed.add_reference(f"s3://{s3_bucket}/data")
        assert run.log_artifact(changed).wait().version == "v1"
    files = {e.path: e for e in first.files()}
    assert sorted(files) == ["a.txt", "sub/b.txt"]
    assert files["a.txt"].ref == f"s3://{s3_bucket}/data/a.txt"
    assert files["a.txt"].algorithm == "etag"
    assert files["a.txt"].digest == hashlib.md5(b"a").hexdigest()
    # Same objects, same digest as W&B computes for them.
    assert first.digest == _wandb_digest({p: e.digest for p, e in files.items()})


def test_s3_reference_merged_with_files(ref_server, s3_endpoint, s3_bucket, tmp_path) -> None:
    _put(s3_endpoint, s3_bucket, {"raw/1.bin": b"1", "raw/2.bin": b"2"})
    kw = {"address": ref_server.address, "api_key": ref_server.admin_key}
    with depot.init(entity="team", project="p", **kw) as run:
        art = depot.Artifact("mixed", type="dataset")
        art.add_reference(f"s3://{s3_bucket}/raw", name="raw")
        with art.new_file("README.md") as f:
            f.write("hello")
        logged = run.log_artifact(art).wait()
    assert [e.path for e in logged.files()] == ["README.md", "raw/1.bin", "raw/2.bin"]
    assert logged.size == 5 + 2


def test_s3_reference_limits_and_policy(ref_server, s3_endpoint, s3_bucket) -> None:
    _put(s3_endpoint, s3_bucket, {f"many/{i}": b"x" for i in range(5)})
    kw = {"address": ref_server.address, "api_key": ref_server.admin_key}
    with depot.init(entity="team", project="p", **kw) as run:
        art = depot.Artifact("big", type="dataset")
        art.add_reference(f"s3://{s3_bucket}/many", max_objects=3)
        with pytest.raises(depot.TooManyObjectsError, match="max_objects=3"):
            run.log_artifact(art).wait()
        other = depot.Artifact("elsewhere", type="dataset")
        other.add_reference("s3://some-other-bucket/data")
        with pytest.raises(depot.PermissionDeniedError, match="DEPOT_REFERENCE_BUCKETS"):
            run.log_artifact(other).wait()
        bad = depot.Artifact("escape", type="dataset")
        _put(s3_endpoint, s3_bucket, {"evil/../x": b"x"})
        bad.add_reference(f"s3://{s3_bucket}/evil")
        with pytest.raises(depot.InvalidArgumentError, match="'..'"):
            run.log_artifact(bad).wait()
    with pytest.raises(depot.NotFoundError):
        depot.Api(**kw).artifact("team/p/big:latest")


def test_download_s3_reference_fetches_recorded_version(tmp_path, database_url, s3_endpoint, monkeypatch) -> None:
    bucket = "depot-versioned-" + tmp_path.name[-8:].lower().replace("_", "-")
    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=bucket, Key="d/model.bin", Body=b"version one")
    monkeypatch.setenv("DEPOT_S3_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("DEPOT_CACHE_DIR", str(tmp_path / "cache"))
    cfg = make_config(
        tmp_path / "depot-data",
        database_url,
        (tmp_path / "blobs").as_uri(),
        DEPOT_S3_ENDPOINT_URL=s3_endpoint,
        DEPOT_REFERENCE_BUCKETS=bucket,
    )
    srv = ServerThread(cfg).start()
    try:
        create_team(srv.address, srv.admin_key, "team")
        kw = {"address": srv.address, "api_key": srv.admin_key}
        with depot.init(entity="team", project="p", **kw) as run:
            art = depot.Artifact("model", type="model")
            art.add_reference(f"s3://{bucket}/d")
            run.log_artifact(art).wait()
        (entry,) = art.files()
        assert entry.version_id
        s3.put_object(Bucket=bucket, Key="d/model.bin", Body=b"version two, overwritten")
        out = depot.Api(**kw).artifact("team/p/model:v0").download(tmp_path / "out")
        assert (out / "model.bin").read_bytes() == b"version one"
    finally:
        srv.stop()
