"""Manifest entry paths: relative, normalized, never escaping the artifact root.

Checked when a manifest is created and again by the SDK before it writes a
downloaded file, so a manifest from anywhere cannot write outside ``root``.
Control characters (C0 including tab and newline, DEL, C1) are refused: the
artifact digest hashes ``path:digest\n`` lines, which only stay unambiguous
while no path holds a newline.
"""

from __future__ import annotations

from pathlib import Path

from .errors import InvalidArgument
from .validate import control_char

MAX_PATH = 4096
# NAME_MAX of common filesystems (ext4, XFS, APFS): a longer component could
# be logged but never downloaded.
MAX_COMPONENT = 255


def check_entry_path(path: str, field: str = "path") -> str:
    problem = None
    if not path:
        problem = "is empty"
    elif "\0" in path:
        problem = "contains NUL"
    elif (ch := control_char(path)) is not None:
        # A newline let one path spell "aa:<digest>\nb", the digest input of
        # two files; no control character is a path character.
        problem = f"contains the control character U+{ord(ch):04X}"
    elif path.startswith("/") or (len(path) > 1 and path[1] == ":"):
        problem = "is absolute"
    elif len(path.encode()) > MAX_PATH:
        problem = f"is longer than {MAX_PATH} bytes"
    else:
        parts = path.split("/")
        if ".." in parts:
            problem = "contains '..'"
        elif any(p in ("", ".") for p in parts):
            problem = "is not normalized (empty or '.' component)"
        elif any(len(p.encode()) > MAX_COMPONENT for p in parts):
            problem = f"has a component longer than {MAX_COMPONENT} bytes"
    if problem:
        raise InvalidArgument(f"entry path {path!r} {problem}", field=field)
    return path


def safe_join(root: Path, path: str) -> Path:
    """``root / path`` after checking that the result stays inside ``root``."""
    check_entry_path(path)
    root = root.resolve()
    target = (root / path).resolve()
    if not target.is_relative_to(root):
        raise InvalidArgument(f"entry path {path!r} escapes {root}")
    return target
