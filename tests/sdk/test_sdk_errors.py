"""Every error the SDK raises at a user is a depot.DepotError, whatever raised it inside.

The entry-path checks the SDK shares with the services raise the services'
own exception types; bad input must come out of every public entry point as
the SDK's tree (InvalidArgumentError is also a ValueError, as W&B raises).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from support.sdk_errors import refused

import depot
from depot.manifest.v1 import manifest_pb2 as mpb

LONG = "x" * 256  # one byte past NAME_MAX

# No server listens here: every call below must fail before any RPC.
OFFLINE = {"address": "127.0.0.1:9", "api_key": "not-a-key"}


@pytest.fixture
def a_file(tmp_path: Path) -> Path:
    p = tmp_path / "f.txt"
    p.write_text("hello")
    return p


@pytest.mark.parametrize("name", ["a/b", "a\nb", "a\0b", "", "x" * 129, "..", "a b", 7])
def test_artifact_name_is_checked_at_construction(name: Any) -> None:
    err = refused(lambda: depot.Artifact(name, type="dataset"))
    assert isinstance(err, ValueError) and err.field == "name"


def test_artifact_type_metadata_and_algorithm() -> None:
    assert refused(lambda: depot.Artifact("ok", type="data set")).field == "type"
    assert refused(lambda: depot.Artifact("ok", type="d", metadata={"x": float("nan")})).field == "metadata"
    assert refused(lambda: depot.Artifact("ok", type="d", metadata={"x": object()})).field == "metadata"
    assert refused(lambda: depot.Artifact("ok", type="d", metadata=["no"])).field == "metadata"  # type: ignore[arg-type]
    assert refused(lambda: depot.Artifact("ok", type="d", hash_algorithm="sha1")).field == "hash_algorithm"


@pytest.mark.parametrize("name", ["../x", "/abs", "a//b", "./a", "a\0b", LONG, f"d/{LONG}/f", "\udc80"])
def test_add_file_bad_names(a_file: Path, name: str) -> None:
    art = depot.Artifact("ok", type="dataset")
    err = refused(lambda: art.add_file(a_file, name=name))
    assert err.field == "name"
    assert not art.manifest.entries


def test_add_file_missing_or_not_a_file(tmp_path: Path) -> None:
    art = depot.Artifact("ok", type="dataset")
    assert refused(lambda: art.add_file(tmp_path / "nope")).field == "local_path"
    assert refused(lambda: art.add_file(tmp_path)).field == "local_path"


@pytest.mark.parametrize("name", ["../x", "/abs", "a//b", LONG])
def test_new_file_bad_names(name: str) -> None:
    art = depot.Artifact("ok", type="dataset")

    def write() -> None:
        with art.new_file(name) as f:
            f.write("x")

    refused(write)
    assert not art.manifest.entries


def test_add_dir(tmp_path: Path, a_file: Path) -> None:
    art = depot.Artifact("ok", type="dataset")
    refused(lambda: art.add_dir(tmp_path / "nope"))
    refused(lambda: art.add_dir(a_file))
    for name in ("../up", LONG):
        refused(lambda: art.add_dir(tmp_path, name=name))
    assert not art.manifest.entries


def test_add_dir_refuses_a_file_name_the_manifest_cannot_carry(tmp_path: Path) -> None:
    root = tmp_path / "d"
    root.mkdir()
    (root / "ok.txt").write_text("ok")
    # Not UTF-8: Python sees a lone surrogate, which no manifest can hold.
    with open(os.path.join(os.fsencode(root), b"bad-\xff.txt"), "wb") as f:
        f.write(b"x")
    art = depot.Artifact("ok", type="dataset")
    refused(lambda: art.add_dir(root))
    assert not art.manifest.entries, "nothing is added when one path is refused"


def test_add_reference_bad_input(tmp_path: Path, a_file: Path) -> None:
    art = depot.Artifact("ok", type="dataset")
    refused(lambda: art.add_reference("ftp://host/x"))
    refused(lambda: art.add_reference("http://[::1"))
    refused(lambda: art.add_reference("http://user:pw@example.com/x"))
    refused(lambda: art.add_reference(a_file.as_uri(), max_objects=0))
    refused(lambda: art.add_reference(42))  # type: ignore[arg-type]
    refused(lambda: art.add_reference((tmp_path / "nope").as_uri()), depot.NotFoundError)
    for name in ("../x", LONG, "a\0b", f"d/{LONG}"):
        refused(lambda: art.add_reference(a_file.as_uri(), name=name))
        refused(lambda: art.add_reference("s3://bucket/prefix/", name=name))
        refused(lambda: art.add_reference("http://127.0.0.1:9/f", name=name, checksum=False))
    assert not art.manifest.entries and not art._server_references


def test_get_entry_of_a_missing_path(a_file: Path) -> None:
    art = depot.Artifact("ok", type="dataset")
    art.add_file(a_file)
    assert art.get_entry("f.txt").size == 5
    for get in (art.get_entry, art.get_path):
        err = refused(lambda: get("nope"), depot.EntryNotFoundError)
        # W&B's get_entry raises KeyError; code written for it keeps working.
        assert isinstance(err, KeyError) and isinstance(err, depot.NotFoundError)
        assert str(err) == "artifact ok has no entry 'nope'"


@pytest.mark.parametrize(
    "path",
    ["a/b/c/d/e", "e/p/", "e/p/n:a b", "e/p/n:x/y", "e p/proj/n", "e/p/n\n", "acme/wandb-registry-/c", 3],
)
def test_api_artifact_malformed_names(path: Any) -> None:
    refused(lambda: depot.Api(**OFFLINE).artifact(path))


@pytest.mark.parametrize(
    "kw",
    [
        {"entity": "Team A/../x y"},
        {"entity": "ok", "project": "a/b"},
        {"entity": "ok", "name": "run\n1"},
        {"entity": "ok", "job_type": "x" * 200},
        {"entity": "ok", "config": {"lr": float("inf")}},
        {"entity": "ok", "config": {"f": open}},
    ],
)
def test_init_bad_arguments_fail_before_connecting(kw: dict[str, Any]) -> None:
    refused(lambda: depot.init(**kw, **OFFLINE))


def test_path_component_longer_than_name_max_is_refused_by_the_server(server) -> None:
    client = depot.Client(server.address, server.admin_key)
    entry = mpb.ManifestEntry(path=f"d/{LONG}", algorithm="xxh3_128", digest="AAAAAAAAAAAAAAAAAAAAAA==", size=0)
    req = mpb.PutManifestRequest(
        header=mpb.ManifestHeader(entity="admin", digest_algorithm="xxh3_128"), entries=[entry]
    )
    err = refused(lambda: client.call(client.manifest.PutManifest, req))
    assert "255" in err.message
    client.close()


def test_online_entry_points(server, tmp_path: Path, a_file: Path) -> None:
    kw = {"address": server.address, "api_key": server.admin_key}
    with depot.init(project="p", job_type="t", **kw) as run:
        art = depot.Artifact("ds", type="dataset")
        art.add_file(a_file, name="f.txt")
        logged = run.log_artifact(art).wait()
        refused(lambda: run.log_artifact(depot.Artifact("ds2", type="dataset"), aliases=["bad alias"]))
        refused(lambda: run.log_artifact(depot.Artifact("ds2", type="dataset"), aliases="candidate"))  # type: ignore[arg-type]
        refused(lambda: run.log_artifact("ds"))  # type: ignore[arg-type]
        refused(lambda: run.use_artifact(12))  # type: ignore[arg-type]
        refused(lambda: run.use_artifact("no such:thing"))
        refused(lambda: run.use_artifact("missing:latest"), depot.NotFoundError)
        refused(lambda: logged.link("acme/wandb-registry-model/c", aliases=["a\nb"]))
        refused(lambda: logged.add_file(a_file), depot.DepotError)
    refused(lambda: logged.get_entry("nope"), depot.EntryNotFoundError)
    assert logged.get_entry("f.txt").size == 5

    # The symlink refusal on download: f.txt in the target is a link out of it.
    outside = tmp_path / "outside"
    outside.write_text("keep")
    root = tmp_path / "out"
    root.mkdir()
    (root / "f.txt").symlink_to(outside)
    got = depot.Api(**kw).artifact(logged.qualified_name)
    err = refused(lambda: got.download(root))
    assert "escapes" in err.message
    assert outside.read_text() == "keep"

    # A download root that cannot be a directory.
    refused(lambda: got.download(a_file))
