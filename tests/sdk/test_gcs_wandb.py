"""A W&B manifest with gs:// entries, as W&B's GCS handler writes them, imports as Depot gs:// entries."""

from __future__ import annotations

import pytest

import depot
from depot._wandb import from_wandb_manifest, to_wandb_manifest, wandb_manifest_digest

MD5 = "XUFAKrxLKna5cZ2REBfFkg=="  # base64 md5 of b"hello"


def _manifest(version_id: object) -> dict[str, object]:
    # W&B: digest = md5_hash, extra = {"etag": obj.etag, "versionID": obj.generation (an int)}.
    entry = {
        "digest": MD5,
        "ref": "gs://b/data/a.txt",
        "size": 5,
        "extra": {"etag": "CPHE3Zi=", "versionID": version_id},
    }
    return {
        "version": 1,
        "storagePolicy": "wandb-storage-policy-v1",
        "storagePolicyConfig": {"storageLayout": "V2"},
        "contents": {"a.txt": entry},
    }


def test_wandb_gcs_entry_imports_with_its_generation() -> None:
    data = _manifest(1700000000000001)
    [e] = from_wandb_manifest(data)
    assert (e.path, e.algorithm, e.digest, e.size, e.ref) == ("a.txt", "md5", MD5, 5, "gs://b/data/a.txt")
    assert e.version_id == "1700000000000001"
    # Export gives the generation back under versionID, and the digest W&B computes.
    out = to_wandb_manifest([e])
    assert out["contents"]["a.txt"]["extra"]["versionID"] == "1700000000000001"
    assert wandb_manifest_digest(out) == wandb_manifest_digest(data)


@pytest.mark.parametrize("bad", [-1, True, 1.5, ["1"]])
def test_other_version_ids_are_refused(bad: object) -> None:
    with pytest.raises(depot.InvalidArgumentError, match="versionID"):
        from_wandb_manifest(_manifest(bad))
