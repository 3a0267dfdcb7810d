"""The streamed W&B export writes exactly the text of ``json.dumps(export_wandb_manifest(...), indent=2)``."""

from __future__ import annotations

import io
import json
from pathlib import Path

import depot
from depot._wandb import write_wandb_manifest

CONTENTS = {
    "s3/obj.bin": {
        "digest": "0123456789abcdef0123456789abcdef",
        "size": 12,
        "ref": "s3://bucket/obj.bin",
        "extra": {"etag": "0123456789abcdef0123456789abcdef", "versionID": "v1", "note": {"k": [1, "\u00e9"]}},
    },
    "web/page.html": {"digest": "abc", "size": 3, "ref": "https://example.invalid/page.html"},
    "raw/unchecked": {"digest": "https://example.invalid/u", "ref": "https://example.invalid/u"},
    'odd/q"uote \u00e9\u4e2d.txt': {"digest": "1B2M2Y8AsgTpgAmY7PhCfg==", "size": 0, "ref": "file:///tmp/x"},
}


def _export(art: depot.Artifact) -> str:
    out = io.StringIO()
    write_wandb_manifest(art, out)
    return out.getvalue()


def test_stream_matches_the_in_memory_text(tmp_path: Path) -> None:
    art = depot.artifact_from_wandb_manifest(
        {"version": 1, "storagePolicy": "wandb-storage-policy-v1", "contents": CONTENTS}, "w", "dataset"
    )
    assert _export(art) == json.dumps(depot.export_wandb_manifest(art), indent=2)
    (tmp_path / "f.txt").write_text("uploaded")
    art = depot.Artifact("x", type="dataset")
    art.add_file(tmp_path / "f.txt", name="a/f.txt")
    art.add_reference("https://example.invalid/z", name="z", checksum=False)
    assert _export(art) == json.dumps(depot.export_wandb_manifest(art), indent=2)


def test_an_empty_artifact_exports_empty_contents() -> None:
    art = depot.Artifact("empty", type="dataset")
    text = _export(art)
    assert text == json.dumps(depot.export_wandb_manifest(art), indent=2)
    assert json.loads(text)["contents"] == {}
