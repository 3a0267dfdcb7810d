"""Secrets on disk are 0600 from their first byte, in a 0700 data dir.

Every test runs with umask 0, the worst a careless environment gives: a file
created by ``write_text`` would be 0666 until someone chmods it. An audit
hook (PEP 578) looks at the data dir at every file-system step the code
under test takes (each open, chmod, rename, link) and records any file that
is readable by others at that moment, so "written, then chmod-ed" is caught
deterministically, without racing a poller against it.
"""

from __future__ import annotations

import os
import stat
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from depot.services.allinone.app import internal_secret
from depot.services.common.secret_files import private_dir, write_secret_file

_STEPS = {"open", "os.chmod", "os.rename", "os.link", "os.remove"}


class _Watch:
    dir: Path | None = None
    seen: list[str] = []


def _audit(event: str, args: tuple[object, ...]) -> None:
    watched = _Watch.dir
    if watched is None or event not in _STEPS or threading.current_thread() is not threading.main_thread():
        return
    try:
        names = os.listdir(watched)
    except OSError:
        return
    for name in names:
        try:
            mode = stat.S_IMODE(os.lstat(watched / name).st_mode)
        except OSError:
            continue
        if mode & 0o077 and not stat.S_ISDIR(os.lstat(watched / name).st_mode):
            _Watch.seen.append(f"{name} {mode:o} at {event}")


# Audit hooks cannot be removed; this one does nothing unless a test watches.
sys.addaudithook(_audit)


@contextmanager
def watching(directory: Path) -> Iterator[list[str]]:
    """Every file in ``directory`` found readable by others while the block runs."""
    old = os.umask(0)
    _Watch.dir, _Watch.seen = directory, []
    try:
        yield _Watch.seen
    finally:
        _Watch.dir = None
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_internal_secret_and_data_dir_are_private_under_umask_0(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o700)  # so the watch can start before the code runs
    with watching(data) as exposed:
        internal_secret(data)
    assert exposed == []
    assert mode(data / "internal.secret") == 0o600
    assert mode(data) == 0o700
    assert sorted(os.listdir(data)) == ["internal.secret"], "no temporary file left behind"


def test_a_new_data_dir_is_created_0700(tmp_path: Path) -> None:
    data = tmp_path / "new" / "data"
    with watching(tmp_path):
        internal_secret(data)
    assert mode(data) == 0o700
    assert mode(data / "internal.secret") == 0o600


def test_an_existing_loose_data_dir_and_secret_are_tightened(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o755)
    (data / "internal.secret").write_text("from-an-older-version")
    (data / "internal.secret").chmod(0o644)
    assert internal_secret(data) == b"from-an-older-version", "an existing secret is kept"
    assert mode(data / "internal.secret") == 0o600
    private_dir(data)
    assert mode(data) == 0o700


def test_write_secret_file_replaces_whole_and_private(tmp_path: Path) -> None:
    target = tmp_path / "admin.key"
    target.write_text("old key, world-readable\n")
    target.chmod(0o644)
    with watching(tmp_path) as exposed:
        assert write_secret_file(target, "dpt_new_key\n")
    # The old file was readable before; what matters is the new one never is.
    assert [e for e in exposed if not e.startswith("admin.key 644")] == []
    assert target.read_text() == "dpt_new_key\n"
    assert mode(target) == 0o600
    assert os.listdir(tmp_path) == ["admin.key"]


def test_write_secret_file_without_replace_keeps_the_first(tmp_path: Path) -> None:
    target = tmp_path / "internal.secret"
    with watching(tmp_path) as exposed:
        assert write_secret_file(target, "first", replace=False)
        assert not write_secret_file(target, "second", replace=False)
    assert exposed == []
    assert target.read_text() == "first"
    assert os.listdir(tmp_path) == ["internal.secret"]


@pytest.mark.parametrize("replace", [True, False])
def test_concurrent_writers_leave_one_whole_value(tmp_path: Path, replace: bool) -> None:
    target = tmp_path / "secret"
    values = [f"value-{i}-" + "x" * 4096 for i in range(8)]
    threads = [
        threading.Thread(target=write_secret_file, args=(target, v), kwargs={"replace": replace}) for v in values
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert target.read_text() in values
    assert mode(target) == 0o600
    assert os.listdir(tmp_path) == ["secret"]
