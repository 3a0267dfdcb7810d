"""A data dir that is not ours, or cannot be locked, stops the server with one
line naming it (issue 8, round 2).

private_dir used to warn and carry on when the data dir belonged to another
user (who could read the secrets or swap files under us), and a flock
failure other than "already locked" (ENOLCK on NFS, EACCES) printed a
traceback. Tests run as root, so a tmp dir is chowned to nobody (65534).
"""

from __future__ import annotations

import errno
import fcntl
import os
import subprocess
import sys
from pathlib import Path

import pytest

from depot.services.allinone.app import LOCK_FILE, internal_secret, lock_data_dir
from depot.services.common.secret_files import DataDirError, private_dir

NOBODY = 65534


@pytest.fixture
def foreign_dir(tmp_path: Path) -> Path:
    if os.geteuid() != 0:
        pytest.skip("chown to another uid needs root")
    data = tmp_path / "theirs"
    data.mkdir(mode=0o700)
    os.chown(data, NOBODY, NOBODY)
    return data


def test_a_data_dir_of_another_user_is_refused(foreign_dir: Path) -> None:
    with pytest.raises(DataDirError) as e:
        private_dir(foreign_dir)
    message = str(e.value)
    assert str(foreign_dir) in message and f"uid {NOBODY}" in message
    assert "\n" not in message
    assert not (foreign_dir / "internal.secret").exists()
    # The launcher that would write internal.secret there is refused too.
    with pytest.raises(ValueError, match="belongs to uid"):
        internal_secret(foreign_dir)
    assert os.listdir(foreign_dir) == []


def test_depot_server_on_another_users_data_dir_exits_with_one_line(foreign_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEPOT_")}
    env.update(DEPOT_DATA_DIR=str(foreign_dir), DEPOT_LISTEN="127.0.0.1:0")
    proc = subprocess.run(
        [sys.executable, "-m", "depot.cli", "server"], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("depot: error: data dir") and str(foreign_dir) in lines[0]


def test_a_flock_failure_is_one_line_naming_the_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "nfs"

    def no_locks(fd: int, op: int) -> None:
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    # NFS without a lock manager is not something a test can mount; its
    # answer to flock() is.
    monkeypatch.setattr(fcntl, "flock", no_locks)
    with pytest.raises(DataDirError) as e:
        lock_data_dir(data)
    message = str(e.value)
    assert str(data) in message and os.strerror(errno.ENOLCK) in message
    assert "\n" not in message


def test_an_unopenable_lock_file_is_one_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    (data / LOCK_FILE).symlink_to(tmp_path / "elsewhere")  # never followed
    with pytest.raises(DataDirError, match=LOCK_FILE):
        lock_data_dir(data)
    assert not (tmp_path / "elsewhere").exists()
