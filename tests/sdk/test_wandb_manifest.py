"""W&B manifest JSON v1: export, import, and the artifact digest both systems agree on."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import xxhash

import depot
from depot import ManifestEntry
from depot._wandb import (
    artifact_from_wandb_manifest,
    export_wandb_manifest,
    from_wandb_manifest,
    to_wandb_manifest,
    wandb_manifest_digest,
)


def _wandb_digest(data: dict[str, Any], hasher: Any = None) -> str:
    """W&B's artifact digest, written out here from its definition, not from our code."""
    h = hasher or hashlib.md5()
    h.update(b"wandb-artifact-manifest-v1\n")
    for path in sorted(data["contents"]):
        h.update(f"{path}:{data['contents'][path]['digest']}\n".encode())
    return str(h.hexdigest())


def _tree(root: Path) -> Path:
    for name, body in {
        "a.txt": b"alpha\n",
        "sub/b.bin": bytes(range(256)) * 40,
        "sub/ünï code.txt": b"unicode path",
        "Z-upper.txt": b"sorted before lowercase",
    }.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(body)
    return root


def _md5_artifact(tmp_path: Path) -> depot.Artifact:
    data = _tree(tmp_path / "data")
    art = depot.Artifact("ds", type="dataset", hash_algorithm="md5")
    art.add_dir(data)
    art.add_reference((data / "a.txt").as_uri(), name="refs/a.txt")
    art.add_reference("https://example.com/free.csv", checksum=False)
    art._put(
        ManifestEntry(
            "s3/obj.bin",
            "9b2cf535f27731c974343645a3985328",
            "etag",
            11,
            ref="s3://bucket/prefix/obj.bin",
            version_id="3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY",
        )
    )
    art._put(
        ManifestEntry(
            "s3/multi.bin",
            "d41d8cd98f00b204e9800998ecf8427e-3",
            "etag",
            1 << 24,
            ref="s3://bucket/prefix/multi.bin",
        )
    )
    art._put(ManifestEntry("web/page.html", "686897696a7c876b7e", "etag", 120, ref="https://example.com/page.html"))
    art._put(
        ManifestEntry(
            "meta.json",
            base64.b64encode(hashlib.md5(b"m").digest()).decode(),
            "md5",
            1,
            ref="file:///data/meta.json",
            extra='{"note":"kept"}',
        )
    )
    return art


def _strip_local(entries: list[ManifestEntry]) -> list[ManifestEntry]:
    return [replace(e, local_path=None) for e in entries]


def test_export_shape(tmp_path: Path) -> None:
    data = export_wandb_manifest(_md5_artifact(tmp_path))
    assert data["version"] == 1
    assert data["storagePolicy"] == "wandb-storage-policy-v1"
    assert data["storagePolicyConfig"] == {"storageLayout": "V2"}
    c = data["contents"]
    assert list(c) == sorted(c, key=str.encode)
    assert c["a.txt"] == {
        "digest": base64.b64encode(hashlib.md5(b"alpha\n").digest()).decode(),
        "size": 6,
    }
    assert c["s3/obj.bin"] == {
        "digest": "9b2cf535f27731c974343645a3985328",
        "size": 11,
        "ref": "s3://bucket/prefix/obj.bin",
        "extra": {
            "etag": "9b2cf535f27731c974343645a3985328",
            "versionID": "3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY",
        },
    }
    assert c["free.csv"] == {
        "digest": "https://example.com/free.csv",
        "ref": "https://example.com/free.csv",
    }
    assert c["web/page.html"] == {
        "digest": "686897696a7c876b7e",
        "size": 120,
        "ref": "https://example.com/page.html",
    }
    assert c["meta.json"]["extra"] == {"note": "kept"}
    json.dumps(data)  # plain JSON all the way down


def test_roundtrip_md5_and_digest_equals_wandb(tmp_path: Path) -> None:
    art = _md5_artifact(tmp_path)
    data = export_wandb_manifest(art)
    assert art.manifest.digest_algorithm == "md5"
    assert _wandb_digest(data) == wandb_manifest_digest(data) == art.digest

    entries = from_wandb_manifest(json.loads(json.dumps(data)))
    assert entries == _strip_local(art.files())

    back = artifact_from_wandb_manifest(data, "ds", "dataset", root=tmp_path / "data")
    assert back.digest == art.digest
    assert _strip_local(back.files()) == _strip_local(art.files())
    uploaded = [e for e in back.files() if not e.ref]
    assert uploaded and all(e.local_path and Path(e.local_path).is_file() for e in uploaded)
    assert back.hash_algorithm == "md5"


def test_roundtrip_xxh3_tags_entries(tmp_path: Path) -> None:
    art = depot.Artifact("ds", type="dataset")  # xxh3_128 by default
    art.add_dir(_tree(tmp_path / "data"))
    data = to_wandb_manifest(art.files(), art.manifest.digest_algorithm)
    assert all(v["extra"] == {"alg": "XXH128"} for v in data["contents"].values())
    assert _wandb_digest(data, xxhash.xxh3_128()) == wandb_manifest_digest(data, "xxh3_128")
    assert wandb_manifest_digest(data, "xxh3_128") == art.digest
    back = artifact_from_wandb_manifest(data, "ds", "dataset", root=tmp_path / "data")
    assert back.digest == art.digest and back.hash_algorithm == "xxh3_128"


def test_import_of_a_wandb_written_manifest(tmp_path: Path) -> None:
    """The shapes W&B's own handlers write: S3 (etag + versionID), http (quoted etag), file, URL-only."""
    root = tmp_path / "dl"
    (root / "uploaded").mkdir(parents=True)
    (root / "uploaded" / "x.txt").write_bytes(b"uploaded by wandb")
    md5 = base64.b64encode(hashlib.md5(b"uploaded by wandb").digest()).decode()
    manifest = {
        "version": 1,
        "storagePolicy": "wandb-storage-policy-v1",
        "storagePolicyConfig": {"storageLayout": "V2"},
        "contents": {
            "uploaded/x.txt": {"digest": md5, "size": 17, "birthArtifactID": "QXJ0aWZhY3Q6MQ=="},
            "s3/k.bin": {
                "digest": "aaaabbbbccccddddeeeeffff00001111",
                "size": 5,
                "ref": "s3://b/k.bin",
                "extra": {"etag": "aaaabbbbccccddddeeeeffff00001111", "versionID": "v-7"},
            },
            "page": {
                "digest": "abc",
                "size": 3,
                "ref": "https://h/page",
                "extra": {"etag": '"abc"'},
            },
            "local.txt": {"digest": md5, "size": 17, "ref": "file:///mnt/local.txt"},
            "free": {"digest": "s3://b/prefix", "ref": "s3://b/prefix"},
        },
    }
    path = tmp_path / "wandb_manifest.json"
    path.write_text(json.dumps(manifest))
    art = artifact_from_wandb_manifest(path, "imported", "dataset", root=root)
    by_path = {e.path: e for e in art.files()}
    assert [e.path for e in art.files()] == [
        "free",
        "local.txt",
        "page",
        "s3/k.bin",
        "uploaded/x.txt",
    ]
    assert (
        by_path["s3/k.bin"].algorithm,
        by_path["s3/k.bin"].version_id,
        by_path["s3/k.bin"].extra,
    ) == ("etag", "v-7", "")
    assert (by_path["page"].algorithm, by_path["page"].extra) == ("etag", "")
    assert by_path["local.txt"].algorithm == "md5"
    assert (by_path["free"].algorithm, by_path["free"].size) == ("none", 0)
    up = by_path["uploaded/x.txt"]
    assert (up.algorithm, up.ref, up.local_path) == (
        "md5",
        "",
        str((root / "uploaded/x.txt").resolve()),
    )
    assert art.digest == _wandb_digest(manifest)


def test_uploaded_files_need_root_and_matching_bytes(tmp_path: Path) -> None:
    art = _md5_artifact(tmp_path)
    data = export_wandb_manifest(art)
    with pytest.raises(depot.InvalidArgumentError) as info:
        artifact_from_wandb_manifest(data, "ds", "dataset")
    assert info.value.field == "root"
    with pytest.raises(depot.NotFoundError, match="elsewhere/Z-upper.txt does not exist"):
        artifact_from_wandb_manifest(data, "ds", "dataset", root=tmp_path / "elsewhere")
    (tmp_path / "data" / "a.txt").write_bytes(b"ALPHA\n")
    with pytest.raises(depot.DigestMismatchError, match="a.txt"):
        artifact_from_wandb_manifest(data, "ds", "dataset", root=tmp_path / "data")
    (tmp_path / "data" / "a.txt").write_bytes(b"alpha, longer\n")
    with pytest.raises(depot.DigestMismatchError, match="bytes"):
        artifact_from_wandb_manifest(data, "ds", "dataset", root=tmp_path / "data")


def _manifest(contents: Any, **top: Any) -> dict[str, Any]:
    base = {
        "version": 1,
        "storagePolicy": "wandb-storage-policy-v1",
        "storagePolicyConfig": {"storageLayout": "V2"},
        "contents": contents,
    }
    base.update(top)
    return base


_OK = {"digest": "1B2M2Y8AsgTpgAmY7PhCfg==", "size": 0}


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (_manifest({}, version=2), "version"),
        (_manifest({}, version="1"), "version"),
        (_manifest({}, version=True), "version"),
        (_manifest({}, storagePolicy="other"), "storagePolicy"),
        (_manifest({}, storagePolicyConfig=[]), "storagePolicyConfig"),
        (_manifest([]), "contents"),
        ({"version": 1}, "storagePolicy"),
        ([], "manifest"),
        (_manifest({"../x": _OK}), "contents['../x']"),
        (_manifest({"/abs": _OK}), "contents['/abs']"),
        (_manifest({"a//b": _OK}), "contents['a//b']"),
        (_manifest({"./a": _OK}), "contents['./a']"),
        (_manifest({"a\0b": _OK}), "contents['a\\x00b']"),
        (_manifest({"a": "digest"}), "contents['a']"),
        (_manifest({"a": {"size": 1}}), "contents['a'].digest"),
        (_manifest({"a": {"digest": 5}}), "contents['a'].digest"),
        (_manifest({"a": {**_OK, "size": -1}}), "contents['a'].size"),
        (_manifest({"a": {**_OK, "size": True}}), "contents['a'].size"),
        (_manifest({"a": {**_OK, "size": "3"}}), "contents['a'].size"),
        (_manifest({"a": {**_OK, "ref": 7}}), "contents['a'].ref"),
        (_manifest({"a": {**_OK, "extra": []}}), "contents['a'].extra"),
        (_manifest({"a": {**_OK, "extra": {"alg": "SHA1"}}}), "contents['a'].extra.alg"),
        (_manifest({"a": {**_OK, "extra": {"versionID": -3}}}), "contents['a'].extra.versionID"),
        (_manifest({"a": {"digest": "not base64 md5"}}), "contents['a'].digest"),
        (_manifest({"a": {**_OK, "ref": "wandb-artifact://abc/x"}}), "contents['a'].ref"),
    ],
)
def test_malformed_manifests_are_rejected(data: Any, field: str) -> None:
    with pytest.raises(depot.InvalidArgumentError) as info:
        from_wandb_manifest(data)
    assert info.value.field == field


def test_malformed_json_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"version": 1, "contents": {')
    with pytest.raises(depot.InvalidArgumentError, match="not valid JSON"):
        artifact_from_wandb_manifest(bad, "n", "t")
    dup = tmp_path / "dup.json"
    dup.write_text(
        '{"version": 1, "storagePolicy": "wandb-storage-policy-v1", "contents": '
        '{"a": {"digest": "1B2M2Y8AsgTpgAmY7PhCfg==", "ref": "file:///a"}, '
        '"a": {"digest": "1B2M2Y8AsgTpgAmY7PhCfg==", "ref": "file:///b"}}}'
    )
    with pytest.raises(depot.InvalidArgumentError, match="duplicate key 'a'"):
        artifact_from_wandb_manifest(dup, "n", "t")
    with pytest.raises(depot.NotFoundError):
        artifact_from_wandb_manifest(tmp_path / "absent.json", "n", "t")


def test_export_rejects_what_wandb_cannot_hold() -> None:
    with pytest.raises(depot.InvalidArgumentError) as info:
        to_wandb_manifest([], "sha1")
    assert info.value.field == "digest_algorithm"
    with pytest.raises(depot.InvalidArgumentError):
        to_wandb_manifest([ManifestEntry("a", "x", "sha256", 1)])
    with pytest.raises(depot.InvalidArgumentError):
        to_wandb_manifest([ManifestEntry("../a", "1B2M2Y8AsgTpgAmY7PhCfg==", "md5", 0)])


def test_logged_artifact_export_matches_server_digest(server: Any, tmp_path: Path) -> None:
    kw = {"address": server.address, "api_key": server.admin_key}
    with depot.init(entity="team", project="proj", job_type="prep", **kw) as run:
        art = depot.Artifact("ds", type="dataset", hash_algorithm="md5")
        art.add_dir(_tree(tmp_path / "data"))
        art.add_reference((tmp_path / "data" / "a.txt").as_uri(), name="ref/a.txt")
        logged = run.log_artifact(art).wait()

    fetched = depot.Api(server.address, server.admin_key).artifact("team/proj/ds:v0")
    data = export_wandb_manifest(fetched)
    assert _wandb_digest(data) == fetched.digest == logged.digest

    back = artifact_from_wandb_manifest(data, "ds", "dataset", root=tmp_path / "data")
    with depot.init(entity="team", project="proj", job_type="import", **kw) as run:
        again = run.log_artifact(back).wait()
    assert (again.version, again.digest) == ("v0", logged.digest), "same content, same version"
