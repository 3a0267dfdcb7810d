"""Downloads after the review of issue 11: file modes, prefixes that are no directory, the stop flag, the size cap."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import Any

import pytest

import depot
from depot import ManifestEntry
from depot._download import fetch_entry
from depot._references import fetch_reference


def _kw(server: Any) -> dict[str, str]:
    return {"address": server.address, "api_key": server.admin_key}


def _log(server: Any, art: depot.Artifact) -> depot.Artifact:
    with depot.init(project="p", job_type="t", **_kw(server)) as run:
        logged = run.log_artifact(art).wait()
    return depot.Api(**_kw(server)).artifact(logged.qualified_name)


def _umask() -> int:
    # Read in a child, so this process's umask is never changed under other threads.
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", "import os; print(os.umask(0))"], check=True, capture_output=True, text=True
    )
    return int(out.stdout)


def test_downloaded_files_get_the_mode_of_a_new_file(server: Any, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "small.txt").write_bytes(b"small")  # a BatchReadBlobs file
    (src / "big.bin").write_bytes(os.urandom((1 << 20) + 5))  # a ReadBlob stream
    ref = tmp_path / "ref.txt"
    ref.write_bytes(b"by reference")
    art = depot.Artifact("modes", type="dataset")
    art.add_dir(src)
    art.add_reference(ref.as_uri(), name="ref.txt")
    got = _log(server, art)
    root = got.download(tmp_path / "out")
    want = 0o666 & ~_umask()
    modes = {p.name: p.stat().st_mode & 0o777 for p in root.iterdir()}
    assert modes == {"small.txt": want, "big.bin": want, "ref.txt": want}
    one = Path(got.get_entry("big.bin").download(tmp_path / "one"))
    assert one.stat().st_mode & 0o777 == want


@pytest.mark.parametrize("bad", ["/", "//", "data//", "/data", "../data", "./data"])
def test_a_prefix_that_is_no_directory_is_refused(server: Any, tmp_path: Path, bad: str) -> None:
    src = tmp_path / "src"
    (src / "data").mkdir(parents=True)
    (src / "data/a.txt").write_bytes(b"a")
    (src / "b.txt").write_bytes(b"b")
    art = depot.Artifact("pre", type="dataset")
    art.add_dir(src)
    got = _log(server, art)
    with pytest.raises(depot.InvalidArgumentError, match="path_prefix") as err:
        got.download(tmp_path / "out", path_prefix=bad)
    assert err.value.field == "path_prefix"
    assert not (tmp_path / "out" / "b.txt").exists()
    with pytest.raises(depot.InvalidArgumentError, match="prefix") as err:
        got.files(prefix=bad)
    assert err.value.field == "prefix"
    assert [e.path for e in got.files(prefix="data/")] == [e.path for e in got.files(prefix="data")] == ["data/a.txt"]


def test_a_set_stop_flag_ends_a_readblob_stream_and_leaves_nothing(server: Any, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "big.bin").write_bytes(os.urandom(3 << 20))
    art = depot.Artifact("stop", type="model")
    art.add_dir(src)
    got = _log(server, art)
    entry = got.get_entry("big.bin")
    stop = threading.Event()
    stop.set()
    source = entry._source
    assert source is not None
    with pytest.raises(depot.DepotError, match="stopped, another file of the download failed"):
        fetch_entry(source.client, source.entity, entry, tmp_path / "out", False, None, None, source.manifest_id, stop)
    assert [p.name for p in (tmp_path / "out").iterdir()] == []


def test_a_file_reference_longer_than_recorded_stops_at_the_recorded_size(tmp_path: Path) -> None:
    # /dev/zero would never end; a file that grew is the same fault, finite.
    src = tmp_path / "grown"
    src.write_bytes(b"x" * (5 << 20))
    e = ManifestEntry("g", hashlib.md5(b"x" * 10).hexdigest(), "md5", 10, ref=src.as_uri())
    dest = tmp_path / "dest"
    with pytest.raises(depot.DigestMismatchError, match="more than the 10 bytes recorded"):
        fetch_reference(e, dest)
    assert dest.stat().st_size <= 10
