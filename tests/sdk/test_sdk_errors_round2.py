"""Issue 8, second round: the last raw exceptions out of the SDK, and older data.

- W&B import: lone surrogates (legal JSON escapes) and sizes past int64 were
  a raw UnicodeEncodeError / ``ValueError: Value out of range``.
- new_file: OSErrors and bad modes were raw; ``a`` and ``a/b`` in one
  artifact were accepted at log time and failed at download.
- Download applies only the rules that keep writes inside the root: a version
  committed before the control-character rule stays downloadable.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support.sdk_errors import refused

import depot
from depot._artifact import Manifest, ManifestEntry
from depot._paths import safe_join
from depot._wandb import from_wandb_manifest

MD5 = base64.b64encode(hashlib.md5(b"x").digest()).decode()
INT64_MAX = 2**63 - 1
OFFLINE_ENV = {"DEPOT_ADDRESS": "127.0.0.1:9", "DEPOT_API_KEY": "not-a-key"}


def _manifest(contents: dict[str, Any]) -> dict[str, Any]:
    return {"version": 1, "storagePolicy": "wandb-storage-policy-v1", "storagePolicyConfig": {}, "contents": contents}


def _ref(**over: Any) -> dict[str, Any]:
    return {"digest": "e1", "size": 1, "ref": "s3://b/k", **over}


# -- W&B import -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("contents", "field"),
    [
        ({"a\ud800": _ref()}, "contents['a\\ud800']"),
        ({"a": _ref(ref="s3://b/k\ud800")}, "contents['a'].ref"),
        ({"a": _ref(digest="e\udc00")}, "contents['a'].digest"),
        ({"a": _ref(extra={"versionID": "v\ud800"})}, "contents['a'].extra.versionID"),
        ({"a": _ref(extra={"etag2": "\ud800"})}, "contents['a'].extra"),
        ({"a": _ref(extra={"\ud800": 1})}, "contents['a'].extra"),
        ({"a": _ref(extra={"x": "a\0b"})}, "contents['a'].extra"),
    ],
    ids=["path", "ref", "digest", "version-id", "extra-value", "extra-key", "extra-nul"],
)
def test_wandb_import_refuses_what_a_manifest_cannot_carry(contents: dict[str, Any], field: str) -> None:
    err = refused(lambda: from_wandb_manifest(_manifest(contents)))
    assert err.field == field


def test_wandb_import_from_a_file_with_a_surrogate_escape(tmp_path: Path) -> None:
    # As W&B (or an attacker) would write it: a JSON escape, valid JSON.
    f = tmp_path / "wandb_manifest.json"
    f.write_text(
        '{"version": 1, "storagePolicy": "wandb-storage-policy-v1", '
        '"contents": {"a": {"digest": "e1", "size": 1, "ref": "s3://b/\\ud800"}}}'
    )
    err = refused(lambda: depot.artifact_from_wandb_manifest(f, "n", "dataset"))
    assert "UTF-8" in err.message


@pytest.mark.parametrize("size", [2**63, 2**64, -1, True, 1.0])
def test_wandb_import_sizes_are_int64(size: Any) -> None:
    err = refused(lambda: from_wandb_manifest(_manifest({"big": _ref(size=size)})))
    assert err.field == "contents['big'].size" and "'big'" in err.message


def test_wandb_import_sizes_may_not_sum_past_int64() -> None:
    ok = depot.artifact_from_wandb_manifest(_manifest({"a": _ref(size=INT64_MAX)}), "n", "dataset")
    assert ok.size == INT64_MAX
    big = _manifest({"a": _ref(size=2**62), "b": _ref(size=2**62)})
    err = refused(lambda: depot.artifact_from_wandb_manifest(big, "n", "dataset"))
    assert "'b'" in err.message


def test_cli_import_of_a_size_past_int64_is_one_line(tmp_path: Path) -> None:
    f = tmp_path / "wandb_manifest.json"
    f.write_text(json.dumps(_manifest({"huge.bin": _ref(size=2**64)})))
    # No server: the manifest is refused before any connection.
    r = subprocess.run(
        [sys.executable, "-m", "depot", "artifact", "import", str(f), "team/p/ds", "--type", "dataset"],
        env=dict(os.environ, **OFFLINE_ENV),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 1, r.stderr
    assert r.stderr.strip().count("\n") == 0, r.stderr
    assert "InvalidArgumentError" in r.stderr and "huge.bin" in r.stderr


def test_wandb_import_refuses_a_file_and_directory_conflict() -> None:
    err = refused(lambda: from_wandb_manifest(_manifest({"a": _ref(), "a/b": _ref()})))
    assert "'a'" in err.message and "'a/b'" in err.message


# -- new_file ---------------------------------------------------------------------------


def _write(art: depot.Artifact, name: str, mode: Any = "w", **kw: Any) -> None:
    with art.new_file(name, mode, **kw) as f:
        f.write(b"x" if "b" in str(mode) else "x")


def test_new_file_then_a_file_under_it() -> None:
    art = depot.Artifact("ok", type="dataset")
    _write(art, "a")
    err = refused(lambda: _write(art, "a/b"))
    assert "'a'" in err.message and "'a/b'" in err.message and err.reason == "ENTRY_PATH_CONFLICT"
    _write(art, "d/e")
    err = refused(lambda: _write(art, "d"))
    assert "'d'" in err.message and "'d/e'" in err.message
    assert sorted(art.manifest.entries) == ["a", "d/e"]


@pytest.mark.parametrize("mode", ["r", "rb", "a", "ab", "r+", "wr", "ww", "wbt", "", 5, None])
def test_new_file_modes_that_do_not_write_a_new_file(mode: Any) -> None:
    art = depot.Artifact("ok", type="dataset")
    assert refused(lambda: _write(art, "f", mode)).field == "mode"
    assert not art.manifest.entries


@pytest.mark.parametrize("mode", ["w", "wb", "wt", "w+", "wb+", "w+b", "x", "xb"])
def test_new_file_write_modes(mode: str) -> None:
    art = depot.Artifact("ok", type="dataset")
    _write(art, "f", mode)
    assert art.get_entry("f").size == 1


def test_new_file_encoding_and_exclusive_mode() -> None:
    art = depot.Artifact("ok", type="dataset")
    assert refused(lambda: _write(art, "f", encoding="no-such-codec")).field == "encoding"
    assert refused(lambda: _write(art, "f", encoding="rot13")).field == "encoding"
    assert refused(lambda: _write(art, "f", encoding=5)).field == "encoding"
    assert refused(lambda: _write(art, "f", "wb", encoding="utf-8")).field == "encoding"
    _write(art, "f", "x")
    assert refused(lambda: _write(art, "f", "x"), depot.AlreadyExistsError).field == "name"
    _write(art, "f", "w")  # "w" replaces, as open() does


def test_new_file_after_an_abandoned_one() -> None:
    # The body raised: "a" was staged but never added. It must not block "a/b".
    art = depot.Artifact("ok", type="dataset")
    with pytest.raises(RuntimeError), art.new_file("a") as f:
        f.write("half")
        raise RuntimeError("user code failed")
    _write(art, "a/b")
    assert list(art.manifest.entries) == ["a/b"]


# -- file/directory conflicts in every builder ------------------------------------------


def test_add_file_dir_and_reference_conflicts(tmp_path: Path) -> None:
    f = tmp_path / "f.txt"
    f.write_text("hello")
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "g.txt").write_text("g")

    art = depot.Artifact("ok", type="dataset")
    art.add_file(f, name="a")
    assert "'a'" in refused(lambda: art.add_file(f, name="a/b")).message
    assert "'a'" in refused(lambda: art.add_dir(tree, name="a")).message
    assert "'a'" in refused(lambda: art.add_reference(tree.as_uri(), name="a")).message
    assert "'a'" in refused(lambda: art.add_reference(f.as_uri(), name="a/x")).message
    assert "'a'" in refused(lambda: art.add_reference("http://127.0.0.1:9/x", name="a/x", checksum=False)).message
    assert list(art.manifest.entries) == ["a"], "a refused call adds nothing"

    art.add_dir(tree, name="t")
    err = refused(lambda: art.add_file(f, name="t/sub"))
    assert "'t/sub'" in err.message and "'t/sub/g.txt'" in err.message
    refused(lambda: art.add_file(f, name="t"))
    art.add_file(f, name="a")  # the same path again replaces: no conflict with itself
    art.add_dir(tree, name="t")
    assert sorted(art.manifest.entries) == ["a", "t/sub/g.txt"]


# -- local paths and reference arguments -----------------------------------------------


def test_local_paths_the_os_refuses_are_invalid_arguments(tmp_path: Path) -> None:
    art = depot.Artifact("ok", type="dataset")
    long_name = str(tmp_path / ("x" * 300))  # ENAMETOOLONG from stat(), not "missing"
    for bad in (123, b"/etc/passwd", "a\0b", long_name, "y" * 5000):
        assert refused(lambda: art.add_file(bad)).field == "local_path"
        assert refused(lambda: art.add_dir(bad)).field == "local_path"
    for uri in (f"file://{long_name}", "file:///tmp/a%00b"):
        assert refused(lambda: art.add_reference(uri)).field == "uri"
    assert not art.manifest.entries


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"uri": "s3://bucket/k\ud800"}, "uri"),
        ({"uri": "s3://bucket/a\nb"}, "uri"),
        ({"uri": "gs://bucket/a\x85", "checksum": False}, "uri"),
        ({"uri": "s3://bucket/p/", "max_objects": True}, "max_objects"),
        ({"uri": "s3://bucket/p/", "max_objects": 2**63}, "max_objects"),
        ({"uri": "s3://bucket/p/", "checksum": "no"}, "checksum"),
    ],
    ids=["surrogate", "newline", "c1-unchecked", "bool-limit", "limit-past-int64", "checksum-str"],
)
def test_reference_arguments_a_manifest_cannot_carry(kw: dict[str, Any], field: str) -> None:
    art = depot.Artifact("ok", type="dataset")
    assert refused(lambda: art.add_reference(**kw)).field == field
    assert not art.manifest.entries and not art._server_references


def test_fetching_a_file_reference_no_file_can_have(tmp_path: Path) -> None:
    from depot._references import fetch_reference

    e = ManifestEntry("a", MD5, "md5", 1, ref="file:///tmp/a%00b")
    assert refused(lambda: fetch_reference(e, tmp_path / "dest")).field == "a"


# -- downloads of older data ------------------------------------------------------------


@pytest.mark.parametrize("path", ["tab\there", "nl\nx", "del\x7f", "c1\x85", "d/" + "x" * 300])
def test_download_join_skips_the_write_only_rules(tmp_path: Path, path: str) -> None:
    assert safe_join(tmp_path, path) == tmp_path.resolve() / path


@pytest.mark.parametrize("path", ["../x", "a/../../x", "/etc/passwd", "C:/x", "a\0b", "", "a//b", "./a"])
def test_download_join_keeps_the_escape_rules(tmp_path: Path, path: str) -> None:
    refused(lambda: safe_join(tmp_path, path))


def test_download_of_a_version_with_a_control_character_in_a_path(server, tmp_path: Path) -> None:
    kw = {"address": server.address, "api_key": server.admin_key}
    src = tmp_path / "f.txt"
    src.write_text("old bytes")
    with depot.init(project="p", job_type="t", **kw) as run:
        art = depot.Artifact("old", type="dataset")
        art.add_file(src, name="f.txt")
        logged = run.log_artifact(art).wait()
    got = depot.Api(**kw).artifact(logged.qualified_name)
    blob = got.get_entry("f.txt")
    # The server refuses these paths now; a version committed before the rule
    # holds them in its manifest, which is all download() reads.
    long_name = "y" * 300
    got._manifest = Manifest(
        {
            "tab\tname.txt": ManifestEntry("tab\tname.txt", blob.digest, blob.algorithm, blob.size),
            "c1\x85/f": ManifestEntry("c1\x85/f", blob.digest, blob.algorithm, blob.size),
        }
    )
    root = got.download(tmp_path / "out")
    assert (root / "tab\tname.txt").read_text() == "old bytes"
    assert (root / "c1\x85" / "f").read_text() == "old bytes"

    # A component the filesystem refuses is a DepotError naming the entry, not an OSError.
    got._manifest = Manifest({long_name: ManifestEntry(long_name, blob.digest, blob.algorithm, blob.size)})
    err = refused(lambda: got.download(tmp_path / "out2"), depot.DepotError)
    assert err.field == long_name
    assert refused(lambda: got.download(5)).field == "root"  # type: ignore[arg-type]
