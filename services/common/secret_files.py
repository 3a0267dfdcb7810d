"""Secrets on disk: files only their owner can read, in a directory only it can enter.

Every secret a server keeps (``internal.secret``, ``admin.key``) is written
by :func:`write_secret_file`: the bytes go to a temporary file created with
mode 0600 (``os.open`` with ``O_EXCL``, so the mode holds from the first
byte whatever the umask), are fsynced, and the finished file is then
renamed (or hard-linked, when an existing one must not be replaced) onto
its name. A reader therefore never sees the secret world-readable, never
sees half of it, and two servers creating the same secret at once agree on
one value.

The data dir holding them is made 0700 by :func:`private_dir`; one that
exists with looser bits and belongs to us is tightened (with a warning),
because blobs and the embedded PostgreSQL live there too; one that belongs
to another user is refused (DataDirError, one line).
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
from pathlib import Path

log = logging.getLogger(__name__)

SECRET_MODE = 0o600
DIR_MODE = 0o700


class DataDirError(ValueError):
    """The data dir cannot be used safely (or at all); the message is one line naming it."""


def private_dir(path: Path) -> Path:
    """Creates ``path`` (mode 0700) or tightens an existing one we own.

    Raises DataDirError when it belongs to another user: its owner could
    read our secrets or replace files under us whatever its mode says.
    """
    try:
        path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        st = path.stat()
    except OSError as e:
        raise DataDirError(f"data dir {path}: {e.strerror or e}") from None
    if st.st_uid != os.geteuid():
        raise DataDirError(
            f"data dir {path} belongs to uid {st.st_uid}, not to this user (uid {os.geteuid()}): "
            "its owner could read or replace the secrets kept there; use a directory of your own"
        )
    if stat.S_IMODE(st.st_mode) & 0o077:
        log.warning("data dir %s was mode %o; setting 0700 (it holds secrets)", path, stat.S_IMODE(st.st_mode))
        path.chmod(DIR_MODE)
    return path


def write_secret_file(path: Path, data: str | bytes, *, replace: bool = True) -> bool:
    """Writes ``data`` to ``path`` with mode 0600, atomically.

    With ``replace=False`` an existing file is kept and False is returned
    (the caller reads that one instead); otherwise it is replaced whole.
    """
    raw = data.encode() if isinstance(data, str) else data
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, SECRET_MODE)
    try:
        try:
            # The umask can only narrow 0600; this makes it exactly 0600.
            os.fchmod(fd, SECRET_MODE)
            view = memoryview(raw)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        if replace:
            os.replace(tmp, path)
        else:
            try:
                # link() fails when the name exists: no overwrite, and a
                # concurrent reader sees the whole file or none.
                os.link(tmp, path)
            except FileExistsError:
                return False
        _fsync_dir(path.parent)
        return True
    finally:
        tmp.unlink(missing_ok=True)


def tighten_secret_file(path: Path) -> None:
    """Sets an existing secret of ours back to 0600 (older versions wrote them 0644)."""
    st = path.stat()
    if stat.S_IMODE(st.st_mode) & 0o077 and st.st_uid == os.geteuid():
        log.warning("%s was mode %o; setting 0600", path, stat.S_IMODE(st.st_mode))
        path.chmod(SECRET_MODE)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:  # pragma: no cover - a platform without directory fds
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


__all__ = ["DataDirError", "private_dir", "tighten_secret_file", "write_secret_file", "SECRET_MODE", "DIR_MODE"]
