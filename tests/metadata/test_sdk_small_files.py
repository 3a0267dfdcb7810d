"""The SDK logs small files inline and bigger ones by upload; files changed after add_file are refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.entities import create_team

import depot


def _log(server, art: depot.Artifact) -> depot.Artifact:  # noqa: ANN001
    create_team(server.address, server.admin_key, "team")
    with depot.init(entity="team", project="p", address=server.address, api_key=server.admin_key) as run:
        return run.log_artifact(art).wait()


def test_mixed_sizes_round_trip(server, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    files = {"small.txt": b"tiny", "empty": b"", "big.bin": bytes(range(256)) * 400}  # 100 KiB: uploaded
    for name, data in files.items():
        (src / name).write_bytes(data)
    art = depot.Artifact("mixed", type="dataset")
    art.add_dir(src)
    logged = _log(server, art)
    assert logged.version == "v0"
    out = depot.Api(address=server.address, api_key=server.admin_key).artifact("team/p/mixed:latest")
    root = out.download(tmp_path / "dl")
    assert {p.name: p.read_bytes() for p in root.iterdir()} == files


@pytest.mark.parametrize(("new", "words"), [(b"tinY", "digest"), (b"longer now", "changed size")])
def test_a_file_changed_after_add_file_is_refused(server, tmp_path: Path, new: bytes, words: str) -> None:
    f = tmp_path / "small.txt"
    f.write_bytes(b"tiny")
    art = depot.Artifact("changed", type="dataset")
    art.add_file(f)
    f.write_bytes(new)
    with pytest.raises(depot.DigestMismatchError, match=words):
        _log(server, art)
