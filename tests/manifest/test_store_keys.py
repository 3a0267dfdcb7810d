"""Blob keys never leave the store root, whatever a caller manages to put in one."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from depot import InvalidArgumentError
from depot._paths import safe_join
from depot.services.common.errors import InvalidArgument
from depot.services.common.validate import check_entry_path
from depot.services.manifest.store import LocalBlobStore, check_key


@pytest.mark.parametrize("key", ["", "/abs", "a/../b", "..", "a//b", "./a", "a/.", "a\0b"])
def test_bad_keys_are_refused(key: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument):
        check_key(key)
    store = LocalBlobStore(tmp_path / "root")
    with pytest.raises(InvalidArgument):
        asyncio.run(store.exists(key))


def test_good_keys_stay_under_root(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "root")
    src = tmp_path / "src"
    src.write_bytes(b"x")
    asyncio.run(store.put_file("team/blobs/md5/ab/abcd", src))
    assert (tmp_path / "root/team/blobs/md5/ab/abcd").read_bytes() == b"x"
    assert asyncio.run(store.exists("team/blobs/md5/ab/abcd"))


@pytest.mark.parametrize("path", ["../x", "a/../../x", "/etc/passwd", "C:/x", "a\0", "a//b", ""])
def test_entry_paths_cannot_escape(path: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument):
        check_entry_path(path)
    with pytest.raises(InvalidArgumentError):
        safe_join(tmp_path, path)


def test_safe_join_refuses_symlink_escape(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to(tmp_path)
    with pytest.raises(InvalidArgumentError, match="escapes"):
        safe_join(root, "link/outside.txt")
    assert safe_join(root, "sub/ok.txt") == root.resolve() / "sub/ok.txt"
