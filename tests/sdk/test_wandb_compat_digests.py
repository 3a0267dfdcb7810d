"""W&B's artifact digest, computed here from its definition, equals Depot's; export -> import keeps every entry.

W&B's rule: md5 (or xxh128 for an XXH128 artifact) over
``wandb-artifact-manifest-v1\\n`` and the path-sorted ``path:digest\\n`` lines,
an uploaded file's digest being the base64 of its content hash and an S3
object's its ETag without quotes.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import xxhash
from support.entities import create_team
from support.http_files import FileServer, Served
from support.servers import ServerThread, make_config

import depot
from depot._wandb import artifact_from_wandb_manifest, export_wandb_manifest

FILES = {"a.txt": b"alpha\n", "sub/b.bin": bytes(range(256)) * 300, "Z.txt": b"upper first", "empty": b""}


def _wandb_digest(lines: dict[str, str], algorithm: str) -> str:
    h: Any = hashlib.md5() if algorithm == "md5" else xxhash.xxh3_128()
    h.update(b"wandb-artifact-manifest-v1\n")
    for path in sorted(lines):
        h.update(f"{path}:{lines[path]}\n".encode())
    return str(h.hexdigest())


def _file_digest(body: bytes, algorithm: str) -> str:
    raw = hashlib.md5(body).digest() if algorithm == "md5" else xxhash.xxh3_128(body).digest()
    return base64.b64encode(raw).decode()


@pytest.fixture
def ref_server(
    tmp_path: Path, database_url: str, s3_endpoint: str, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ServerThread]:
    """A server that may list ``s3_bucket`` (moto), with the SDK's fetches pointed there too."""
    monkeypatch.setenv("DEPOT_REFERENCE_S3_ENDPOINT_URL", s3_endpoint)
    cfg = make_config(
        tmp_path / "depot-data",
        database_url,
        (tmp_path / "blobs").as_uri(),
        DEPOT_REFERENCE_S3_ENDPOINT_URL=s3_endpoint,
        DEPOT_REFERENCE_BUCKETS=s3_bucket,
    )
    srv = ServerThread(cfg).start()
    create_team(srv.address, srv.admin_key, "team")
    monkeypatch.setenv("DEPOT_ADDRESS", srv.address)
    monkeypatch.setenv("DEPOT_API_KEY", srv.admin_key)
    yield srv
    srv.stop()


def _tree(root: Path) -> Path:
    for name, body in FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(body)
    return root


@pytest.mark.parametrize("algorithm", ["md5", "xxh3_128"])
def test_uploaded_files_digest_is_wandbs(ref_server: ServerThread, tmp_path: Path, algorithm: str) -> None:
    art = depot.Artifact("files", "dataset", hash_algorithm=algorithm)
    art.add_dir(_tree(tmp_path / "data"))
    expected = _wandb_digest({p: _file_digest(b, algorithm) for p, b in FILES.items()}, algorithm)
    assert art.digest == expected
    with depot.init(entity="team", project="p") as run:
        run.log_artifact(art).wait()
    assert art.digest == expected and art.digest_algorithm == algorithm
    assert depot.Api().artifact("team/p/files:latest").digest == expected


def test_s3_reference_digest_is_wandbs(ref_server: ServerThread, s3_endpoint: str, s3_bucket: str) -> None:
    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    for key, body in {"ds/x.csv": b"x", "ds/deep/y.csv": b"yy" * 1000, "ds/zero": b"", "dsx/sibling": b"no"}.items():
        s3.put_object(Bucket=s3_bucket, Key=key, Body=body)
    listed = s3.list_objects_v2(Bucket=s3_bucket, Prefix="ds/")["Contents"]
    lines = {f"data/{o['Key'][len('ds/') :]}": o["ETag"].strip('"') for o in listed}
    art = depot.Artifact("refs", "dataset")
    art.add_reference(f"s3://{s3_bucket}/ds/", name="data")
    with depot.init(entity="team", project="p") as run:
        run.log_artifact(art).wait()
    assert {e.path: e.digest for e in art.files()} == lines
    assert art.digest == _wandb_digest(lines, "md5")


def test_export_import_round_trip_keeps_digests_and_downloads(
    ref_server: ServerThread, s3_endpoint: str, s3_bucket: str, http_files: FileServer, tmp_path: Path
) -> None:
    boto3.client("s3", endpoint_url=s3_endpoint).put_object(Bucket=s3_bucket, Key="k/obj", Body=b"in s3")
    http_files.files["/etag.csv"] = Served(b"served with an etag", etag='"e-1"')
    http_files.files["/plain.csv"] = Served(b"served without an etag")
    local = tmp_path / "local.txt"
    local.write_bytes(b"a file:// reference")
    for algorithm in ("md5", "xxh3_128"):
        art = depot.Artifact(f"all-{algorithm[:3]}", "dataset", hash_algorithm=algorithm)
        art.add_dir(_tree(tmp_path / "data"), name="files")
        art.add_reference(local.as_uri(), name="local.txt")
        art.add_reference(http_files.url("etag.csv"), name="http/etag.csv")
        art.add_reference(http_files.url("plain.csv"), name="http/plain.csv")
        art.add_reference(http_files.url("plain.csv"), name="http/unchecked.csv", checksum=False)
        art.add_reference(f"s3://{s3_bucket}/k/obj", name="s3/obj")
        with depot.init(entity="team", project="p") as run:
            run.log_artifact(art).wait()
        kinds = {e.path: e.algorithm for e in art.files()}
        assert kinds["http/plain.csv"] == algorithm and kinds["http/etag.csv"] == "etag"
        # As W&B would hand it over: JSON text, files downloaded beside it.
        exported = json.loads(json.dumps(export_wandb_manifest(art)))
        assert exported["contents"]["http/plain.csv"]["extra"]["alg"] == ("MD5" if algorithm == "md5" else "XXH128")
        first = Path(art.download(tmp_path / f"first-{algorithm}"))
        back = artifact_from_wandb_manifest(
            exported, f"back-{algorithm[:3]}", "dataset", root=first, digest_algorithm=algorithm
        )
        inferred = artifact_from_wandb_manifest(exported, "inferred", "dataset", root=first)
        assert inferred.digest_algorithm == algorithm
        assert {e.path: e.algorithm for e in back.files()} == kinds
        assert back.digest == art.digest
        with depot.init(entity="team", project="p") as run:
            run.log_artifact(back).wait()
        assert back.digest == art.digest
        second = Path(back.download(tmp_path / f"second-{algorithm}"))
        for p in kinds:
            assert (second / p).read_bytes() == (first / p).read_bytes(), p
        back.verify(second)


def test_import_takes_the_digest_algorithm_or_infers_it() -> None:
    # An XXH128 W&B artifact of references only: nothing in the entries says
    # XXH128, so only the parameter gets W&B's digest.
    contents = {"r.csv": {"digest": "0123abcd", "size": 3, "ref": "s3://b/r.csv", "extra": {"etag": "0123abcd"}}}
    data = {"version": 1, "storagePolicy": "wandb-storage-policy-v1", "contents": contents}
    lines = {"r.csv": "0123abcd"}
    assert artifact_from_wandb_manifest(data, "r", "dataset").digest == _wandb_digest(lines, "md5")
    xxh = artifact_from_wandb_manifest(data, "r", "dataset", digest_algorithm="xxh3_128")
    assert (xxh.digest_algorithm, xxh.digest) == ("xxh3_128", _wandb_digest(lines, "xxh3_128"))
    with pytest.raises(depot.InvalidArgumentError, match="digest_algorithm"):
        artifact_from_wandb_manifest(data, "r", "dataset", digest_algorithm="sha1")
