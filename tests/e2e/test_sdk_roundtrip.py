"""The SDK against the whole system: log, dedup, resolve, download, lineage."""

from __future__ import annotations

from pathlib import Path

import pytest

import depot


def _write(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return root


def test_log_dedup_new_version_resolve_download(any_server, tmp_path: Path) -> None:
    data = _write(tmp_path / "data", {"a.txt": b"alpha\n", "sub/b.bin": bytes(range(256)) * 40})
    kw = {"address": any_server.address, "api_key": any_server.admin_key}
    with depot.init(entity="team", project="proj", job_type="prep", **kw) as run:
        art = depot.Artifact("ds", type="dataset")
        art.add_dir(data)
        first = run.log_artifact(art, aliases=["candidate"]).wait()
        assert first.version == "v0"
        assert set(first.aliases) == {"latest", "candidate"}

        again = depot.Artifact("ds", type="dataset")
        again.add_dir(data)
        second = run.log_artifact(again).wait()
        assert second.version == "v0", "identical content must return the existing version"
        assert second.digest == first.digest

        (data / "a.txt").write_bytes(b"changed\n")
        third = depot.Artifact("ds", type="dataset")
        third.add_dir(data)
        changed = run.log_artifact(third).wait()
        assert changed.version == "v1"
        assert changed.digest != first.digest

    with depot.init(entity="team", project="proj", job_type="train", **kw) as consumer:
        used = consumer.use_artifact("ds:latest")
        assert used.version == "v1"
        out = used.download(tmp_path / "out")
        assert (out / "a.txt").read_bytes() == b"changed\n"
        assert (out / "sub/b.bin").read_bytes() == bytes(range(256)) * 40

    api = depot.Api(any_server.address, any_server.admin_key)
    v0 = api.artifact("team/proj/ds:v0")
    assert v0.digest == first.digest and "candidate" in v0.aliases
    assert sorted(e.path for e in v0.files()) == ["a.txt", "sub/b.bin"]
    lineage = api.lineage("team/proj/ds:v1")
    assert lineage.producer.name == run.name
    assert [r.name for r in lineage.consumers] == [consumer.name]


def test_download_detects_tampered_blob(server, tmp_path: Path) -> None:
    kw = {"address": server.address, "api_key": server.admin_key}
    with depot.init(entity="team", project="p", **kw) as run:
        art = depot.Artifact("m", type="model")
        with art.new_file("weights.bin", mode="wb") as f:
            f.write(b"\x01" * 1000)
        run.log_artifact(art).wait()
    blobs = list((server.config.data_dir.parent / "blobs").rglob("blobs/xxh3_128/*/*"))
    assert len(blobs) == 1
    blobs[0].write_bytes(b"\x02" * 1000)
    with pytest.raises(depot.DigestMismatchError):
        depot.Api(**kw).artifact("team/p/m:latest").download(tmp_path / "out")
    assert not (tmp_path / "out" / "weights.bin").exists()


def test_type_change_is_refused(server, tmp_path: Path) -> None:
    kw = {"address": server.address, "api_key": server.admin_key}
    with depot.init(entity="team", project="p", **kw) as run:
        a = depot.Artifact("thing", type="dataset")
        with a.new_file("x.txt") as f:
            f.write("x")
        run.log_artifact(a).wait()
        b = depot.Artifact("thing", type="model")
        with b.new_file("y.txt") as f:
            f.write("y")
        with pytest.raises(depot.TypeMismatchError, match="type 'dataset'"):
            run.log_artifact(b).wait()
    with pytest.raises(depot.NotFoundError):
        depot.Api(**kw).artifact("team/p/thing:v1")


def test_md5_digest_matches_wandb_algorithm(server, tmp_path: Path) -> None:
    import base64
    import hashlib

    files = {"b.txt": b"bee", "a.txt": b"ay"}
    _write(tmp_path / "d", files)
    kw = {"address": server.address, "api_key": server.admin_key}
    with depot.init(entity="team", project="p", **kw) as run:
        art = depot.Artifact("w", type="dataset", hash_algorithm="md5")
        art.add_dir(tmp_path / "d")
        logged = run.log_artifact(art).wait()
    h = hashlib.md5(b"wandb-artifact-manifest-v1\n")
    for name in sorted(files):
        h.update(f"{name}:{base64.b64encode(hashlib.md5(files[name]).digest()).decode()}\n".encode())
    assert logged.digest == h.hexdigest()


def test_file_reference(server, tmp_path: Path) -> None:
    _write(tmp_path / "ref", {"x/1.txt": b"one", "2.txt": b"two"})
    kw = {"address": server.address, "api_key": server.admin_key}
    with depot.init(entity="team", project="p", **kw) as run:
        art = depot.Artifact("refs", type="dataset")
        art.add_reference((tmp_path / "ref").as_uri(), name="data")
        logged = run.log_artifact(art).wait()
    got = depot.Api(**kw).artifact("team/p/refs:latest")
    assert sorted(e.path for e in got.files()) == ["data/2.txt", "data/x/1.txt"]
    assert all(e.ref.startswith("file://") for e in got.files())
    out = got.download(tmp_path / "out")
    assert (out / "data/x/1.txt").read_bytes() == b"one"
    assert logged.version == "v0"
    with pytest.raises(depot.TooManyObjectsError, match="max_objects=1"):
        depot.Artifact("r2", type="dataset").add_reference((tmp_path / "ref").as_uri(), max_objects=1)
