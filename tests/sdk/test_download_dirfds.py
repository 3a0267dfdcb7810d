"""Downloads write through directories held open: one swapped for a symlink mid-download leads nowhere outside."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import depot
from depot import ManifestEntry, _blobs, _download
from depot._copying import DirFds


def _kw(server: Any) -> dict[str, str]:
    return {"address": server.address, "api_key": server.admin_key}


def _log(server: Any, art: depot.Artifact) -> depot.Artifact:
    with depot.init(project="p", job_type="t", **_kw(server)) as run:
        logged = run.log_artifact(art).wait()
    return depot.Api(**_kw(server)).artifact(logged.qualified_name)


def test_a_directory_swapped_for_a_symlink_mid_download_writes_nothing_outside(
    server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    want = {f"f{i:03}.txt": b"bytes %d" % i for i in range(24)}
    for name, data in want.items():
        (src / "sub" / name).write_bytes(data)
    got = _log(server, _art(src))
    source = got._source()
    entries = [e for batch in source.entries() for e in batch]
    # A BatchReadBlobs task per 4 files: the download's first task opens sub/
    # before the rest are even read from the stream.
    monkeypatch.setattr(_blobs, "MAX_BATCH_BLOBS", 4)
    root = tmp_path / "out"
    root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()

    def stream() -> Iterator[list[ManifestEntry]]:
        yield entries[:4]
        # The first task is submitted; once it wrote all its files into sub/, swap sub/ for a link out of root.
        deadline = time.monotonic() + 60
        while not (root / "sub" / "f003.txt").exists():
            assert time.monotonic() < deadline, "the first batch never arrived"
            time.sleep(0.01)
        (root / "sub").rename(root / "sub.old")
        (root / "sub").symlink_to(outside, target_is_directory=True)
        yield entries[4:]

    arrived: int | depot.DepotError
    try:
        arrived = _download.download(source, stream(), root)
    except depot.DepotError as err:
        arrived = err
    assert sorted(p.name for p in outside.iterdir()) == []
    # Every write went to the directory the download opened, still inside root.
    assert arrived == len(want)
    assert {p.name: p.read_bytes() for p in (root / "sub.old").iterdir()} == want


def _art(src: Path) -> depot.Artifact:
    art = depot.Artifact("swap", type="dataset")
    art.add_dir(src)
    return art


def test_a_directory_symlink_inside_root_is_followed_and_one_out_of_root_refused(server: Any, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "a.txt").write_bytes(b"a")
    got = _log(server, _art(src))

    root = tmp_path / "in"
    (root / "real").mkdir(parents=True)
    (root / "sub").symlink_to(root / "real", target_is_directory=True)
    got.download(root)
    assert (root / "real" / "a.txt").read_bytes() == b"a"

    outside = tmp_path / "outside"
    outside.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / "sub").symlink_to(outside, target_is_directory=True)
    with pytest.raises(depot.DepotError) as err:
        got.download(out)
    assert "escapes" in err.value.message
    assert list(outside.iterdir()) == []


def test_dir_fds_keep_a_bounded_number_open_and_never_close_one_in_use(tmp_path: Path) -> None:
    dirs = DirFds(tmp_path, limit=2)
    try:
        pinned = dirs.acquire("a/b")
        for i in range(6):
            fd = dirs.acquire(f"d{i}")
            dirs.release(f"d{i}")
            os.fstat(fd)
        # Two idle at most, plus the one pinned.
        assert len(dirs._open) <= 3
        # Still the directory a/b, still open.
        os.close(os.open("x", os.O_WRONLY | os.O_CREAT, dir_fd=pinned))
        assert (tmp_path / "a" / "b" / "x").exists()
        dirs.release("a/b")
        assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "d0", "d1", "d2", "d3", "d4", "d5"]
    finally:
        dirs.close()


def test_streamed_and_referenced_files_go_to_the_open_directory_after_a_swap(server: Any, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    big = os.urandom((1 << 20) + 7)  # a ReadBlob stream
    (src / "sub" / "big.bin").write_bytes(big)
    ref = tmp_path / "ref.txt"
    ref.write_bytes(b"by reference")
    art = _art(src)
    art.add_reference(ref.as_uri(), name="sub/ref.txt")
    source = _log(server, art)._source()
    entries = {e.path: e for batch in source.entries() for e in batch}
    root = tmp_path / "out"
    root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    dirs = DirFds(root)
    try:
        dirs.acquire("sub")  # as a download's earlier files of sub/ did
        (root / "sub").rename(root / "sub.old")
        (root / "sub").symlink_to(outside, target_is_directory=True)
        for path in ("sub/big.bin", "sub/ref.txt"):
            e = entries[path]
            assert _download.fetch_entry(
                source.client, source.entity, e, root, False, None, None, source.manifest_id, None, dirs
            )
        dirs.release("sub")
    finally:
        dirs.close()
    assert list(outside.iterdir()) == []
    assert (root / "sub.old" / "big.bin").read_bytes() == big
    assert (root / "sub.old" / "ref.txt").read_bytes() == b"by reference"
