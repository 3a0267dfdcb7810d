"""Reading a logged version back: streamed entries, one-path lookups, prefix filters, verify and checkout."""

from __future__ import annotations

import gc
import json
import os
import uuid
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from support.stubs import Stubs

import depot
from depot._wandb import write_wandb_manifest
from depot.manifest.v1 import manifest_pb2 as mpb
from depot.metadata.v1 import metadata_pb2 as pb


def _kw(server: Any) -> dict[str, str]:
    return {"address": server.address, "api_key": server.admin_key}


def _log(server: Any, art: depot.Artifact) -> depot.Artifact:
    with depot.init(project="p", job_type="t", **_kw(server)) as run:
        logged = run.log_artifact(art).wait()
    return depot.Api(**_kw(server)).artifact(logged.qualified_name)


def _log_refs(server: Any, name: str, n: int, base: str = "https://example.invalid/o") -> depot.Artifact:
    """A version of ``n`` unchecksummed references ``d/000000``..., written through the stubs.

    The SDK's builder checks each entry in Python (~100 µs each on a busy
    machine); the manifest service's native writer takes 200k in a second.
    """

    def batches() -> Iterator[mpb.CreateManifestRequest]:
        yield mpb.CreateManifestRequest(header=mpb.ManifestHeader(entity="team", digest_algorithm="md5"))
        for start in range(0, n, 10_000):
            yield mpb.CreateManifestRequest(
                batch=mpb.EntryBatch(
                    entries=[
                        mpb.ManifestEntry(path=f"d/{i:06d}", algorithm="none", digest=f"{base}/{i}", ref=f"{base}/{i}")
                        for i in range(start, min(n, start + 10_000))
                    ]
                )
            )

    with grpc.insecure_channel(server.address) as channel:
        stubs = Stubs(channel, server.admin_key)
        ref = stubs.man.CreateManifest(batches(), metadata=stubs.md)
        v = stubs.artifacts.CreateArtifactVersion(
            pb.CreateArtifactVersionRequest(
                parent="entities/team/projects/p",
                artifact=name,
                type="dataset",
                manifest=ref,
                request_id=uuid.uuid4().hex,
            ),
            metadata=stubs.md,
        )
    return depot.Api(**_kw(server)).artifact(f"team/p/{name}:v{v.index}")


def _tree(tmp_path: Path, files: dict[str, bytes]) -> Path:
    root = tmp_path / "src"
    for rel, body in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(body)
    return root


def test_files_of_a_200k_entry_version_stream_without_being_retained(server: Any, tmp_path: Path) -> None:
    n = 200_000
    got = _log_refs(server, "big", n)
    files = got.files()
    assert len(files) == n

    alive: list[weakref.ref[depot.ManifestEntry]] = []
    count = 0
    last = ""
    for e in files:
        assert e.path > last
        last = e.path
        if count % 5_000 == 0:
            alive.append(weakref.ref(e))
            # While streaming: the entries of batches already passed are gone.
            assert sum(r() is not None for r in alive) <= 2
        count += 1
    del e
    gc.collect()
    assert count == n and last == f"d/{n - 1:06d}"
    assert not any(r() is not None for r in alive), "entries are not retained after the stream moves on"
    assert not got.manifest.loaded, "files() never loads the whole manifest"

    # The W&B export streams the same way (its memory is measured in bench/).
    with open(tmp_path / "wandb.json", "w") as out:
        assert write_wandb_manifest(got, out) == n
    contents = json.loads((tmp_path / "wandb.json").read_text())["contents"]
    assert len(contents) == n and contents[f"d/{n - 1:06d}"]["ref"].endswith(f"/{n - 1}")


def test_get_entry_of_the_first_the_last_and_a_missing_path(server: Any) -> None:
    n = 10_000  # several blocks of the stored manifest
    got = _log_refs(server, "lookup", n)
    assert got.get_entry("d/000000").ref.endswith("/0")
    assert got.get_path(f"d/{n - 1:06d}").ref.endswith(f"/{n - 1}")
    for missing in ("d/0", "d/", f"d/{n:06d}", "zzz", ""):
        with pytest.raises(depot.EntryNotFoundError):
            got.get_entry(missing)
    with pytest.raises(KeyError):
        got.get_entry("nope")
    assert not got.manifest.loaded, "lookups read one path, never the whole manifest"
    assert [e.path for e in got.files(names=["d/000007", "nope", "d/000003"])] == ["d/000003", "d/000007"]
    assert list(got.files(names=[])) == []


def test_path_prefix_is_a_directory(server: Any, tmp_path: Path) -> None:
    files = {
        "data/a.txt": b"a",
        "data/sub/b.txt": b"b",
        "data2/c.txt": b"c",
        "data.csv": b"d",
        "datab": b"e",
        "other.txt": b"f",
    }
    art = depot.Artifact("pre", type="dataset")
    art.add_dir(_tree(tmp_path, files))
    got = _log(server, art)
    inside = ["data/a.txt", "data/sub/b.txt"]
    assert [e.path for e in got.files(prefix="data")] == inside
    assert [e.path for e in got.files(prefix="data/")] == inside
    assert len(got.files(prefix="data")) == 2
    assert [e.path for e in got.files(prefix="data/sub")] == ["data/sub/b.txt"]
    assert [e.path for e in got.files(prefix="data.csv")] == ["data.csv"]

    root = got.download(tmp_path / "out", path_prefix="data")
    on_disk = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    assert on_disk == inside
    assert (root / "data/sub/b.txt").read_bytes() == b"b"
    with pytest.raises(depot.InvalidArgumentError):
        got.download(tmp_path / "bad", path_prefix=5)  # type: ignore[arg-type]


def test_an_entry_downloads_itself(server: Any, tmp_path: Path) -> None:
    big = os.urandom((1 << 20) + 17)  # past the batch limit: a ReadBlob stream
    art = depot.Artifact("self", type="model")
    art.add_dir(_tree(tmp_path, {"w/big.bin": big, "w/small.txt": b"small"}))
    got = _log(server, art)
    path = got.get_entry("w/big.bin").download(tmp_path / "one")
    assert Path(path) == tmp_path / "one" / "w" / "big.bin" and Path(path).read_bytes() == big
    (entry,) = got.files(names=["w/small.txt"])
    assert Path(entry.download(tmp_path / "two")).read_bytes() == b"small"
    with pytest.raises(depot.DepotError, match="not from a logged artifact"):
        depot.ManifestEntry("x", "d", "md5", 1).download(tmp_path)


def test_verify_names_tampered_missing_and_extra_files_and_checkout_repairs(server: Any, tmp_path: Path) -> None:
    files = {f"f/{i}.txt": f"file {i}".encode() for i in range(5)}
    files["g/big.bin"] = os.urandom((1 << 20) + 1)
    art = depot.Artifact("ver", type="dataset")
    art.add_dir(_tree(tmp_path, files))
    ref = tmp_path / "ref.txt"
    ref.write_bytes(b"by reference")
    art.add_reference(ref.as_uri(), name="r/ref.txt")
    got = _log(server, art)
    root = got.download(tmp_path / "out")
    got.verify(root)

    (root / "f/1.txt").write_bytes(b"FILE 1")  # same size, other bytes
    (root / "f/3.txt").unlink()
    (root / "f/extra.txt").write_bytes(b"not in the artifact")
    (root / "x").mkdir()
    (root / "x/y.bin").write_bytes(b"nor this")
    with pytest.raises(depot.DigestMismatchError) as err:
        got.verify(root)
    text = str(err.value)
    assert "1 differ ('f/1.txt')" in text
    assert "1 missing ('f/3.txt')" in text
    assert "2 extra ('f/extra.txt', 'x/y.bin')" in text

    assert got.checkout(root) == root
    got.verify(root)
    assert not (root / "x").exists(), "directories left empty are removed"
    assert (root / "f/1.txt").read_bytes() == b"file 1"


def test_the_first_bad_object_stops_a_100k_entry_download(server: Any, http_files: Any, tmp_path: Path) -> None:
    n = 100_000
    # Every object answers 404: the first fetched fails the download.
    got = _log_refs(server, "bad", n, http_files.url("o"))
    with pytest.raises(depot.NotFoundError) as err:
        got.download(tmp_path / "out")
    assert str(err.value).startswith(f"0 of {n} files arrived, {n} not fetched; first error: d/")
    attempted = len(http_files.requests)
    # The bound is the in-flight window (tasks queued or running), not the version.
    assert 1 <= attempted <= 1000, f"{attempted} objects were fetched after the first error"


def test_an_interrupted_download_resumes_without_refetching(server: Any, tmp_path: Path) -> None:
    files = {f"a/{i:03d}.txt": f"a{i}".encode() for i in range(300)}
    files.update({f"c/{i:03d}.txt": f"c{i}".encode() for i in range(50)})
    files["c/big.bin"] = os.urandom((1 << 20) + 3)
    art = depot.Artifact("resume", type="dataset")
    art.add_dir(_tree(tmp_path, files))
    ref = tmp_path / "gone.txt"
    ref.write_bytes(b"referenced")
    art.add_reference(ref.as_uri(), name="b/ref.txt")
    got = _log(server, art)
    ref.unlink()

    root = tmp_path / "out"
    got.download(root, path_prefix="a")
    with pytest.raises(
        depot.NotFoundError, match=r"^\d+ of 352 files arrived, \d+ not fetched; first error: b/ref.txt"
    ):
        got.download(root)
    before = {p: p.stat().st_ino for p in root.rglob("*") if p.is_file()}
    assert len(before) >= 300

    ref.write_bytes(b"referenced")
    got.download(root)
    got.verify(root)
    kept = [p for p, ino in before.items() if p.stat().st_ino == ino]
    assert len(kept) == len(before), "files already verified in place are not fetched again"
