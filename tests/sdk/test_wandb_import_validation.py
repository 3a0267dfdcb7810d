"""W&B manifest import refuses what would make the artifact digest ambiguous
or the JSON unparseable, always as a depot.DepotError (issue 8, items 5-6)."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest

import depot
from depot._wandb import from_wandb_manifest, load_wandb_manifest

MD5 = base64.b64encode(hashlib.md5(b"x").digest()).decode()


def _manifest(contents: dict) -> dict:
    return {"version": 1, "storagePolicy": "wandb-storage-policy-v1", "storagePolicyConfig": {}, "contents": contents}


@pytest.mark.parametrize(
    "path",
    [f"aa:{MD5}\nb", "a\rb", "tab\tb", "del\x7f", "c1\x85", "c1\x9f"],
    ids=["forge", "cr", "tab", "del", "nel", "c1"],
)
def test_control_characters_in_paths_are_refused(path: str) -> None:
    with pytest.raises(depot.DepotError, match="control character"):
        from_wandb_manifest(_manifest({path: {"digest": MD5, "size": 1}}))


@pytest.mark.parametrize(
    "entry",
    [
        {"digest": f"{MD5}\nb:{MD5}", "size": 1},
        {"digest": "e1", "size": 1, "ref": "s3://b/k\n"},
        {"digest": "e1", "size": 1, "ref": "s3://b/k", "extra": {"versionID": "v\x00"}},
    ],
    ids=["digest", "ref", "version-id"],
)
def test_control_characters_in_digests_refs_and_versions_are_refused(entry: dict) -> None:
    with pytest.raises(depot.DepotError, match="control character"):
        from_wandb_manifest(_manifest({"a": entry}))


@pytest.mark.parametrize(
    "text",
    [
        '{"version": 1, "contents": {"a": {"digest": "d", "size": 1, "extra": {"x": NaN}}}}',
        '{"version": 1, "contents": {"a": {"digest": "d", "size": 1, "extra": {"x": 1e999}}}}',
        '{"version": 1, "contents": {"a": {"digest": "d", "size": 1, "extra": {"x": -Infinity}}}}',
        '{"version": 1, "x": ' + "[" * 100_000 + "]" * 100_000 + "}",
        '{"version": 1, "x": 1' + "0" * 10_000 + "}",
    ],
    ids=["nan", "1e999", "-inf", "deep", "huge-int"],
)
def test_unparseable_json_is_a_depot_error(tmp_path: Path, text: str) -> None:
    f = tmp_path / "wandb_manifest.json"
    f.write_text(text)
    with pytest.raises(depot.DepotError):
        load_wandb_manifest(f)


def test_a_plain_manifest_still_imports(tmp_path: Path) -> None:
    f = tmp_path / "wandb_manifest.json"
    f.write_text(json.dumps(_manifest({"dir/a.txt": {"digest": MD5, "size": 1, "extra": {"k": 1.5}}})))
    [e] = from_wandb_manifest(load_wandb_manifest(f))
    assert (e.path, e.algorithm, e.digest) == ("dir/a.txt", "md5", MD5)
