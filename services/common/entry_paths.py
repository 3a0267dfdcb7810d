"""Manifest entry paths: relative, normalized, never escaping the artifact root.

Checked when a manifest is created and again by the SDK before it writes a
downloaded file, so a manifest from anywhere cannot write outside ``root``.
"""

from __future__ import annotations

from pathlib import Path

from .errors import InvalidArgument

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
