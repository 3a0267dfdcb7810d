"""Manifest entry paths: relative, normalized, never escaping the artifact root.

Checked when an entry is added (SDK), when a manifest is created (manifest
service) and again by the SDK before it writes a downloaded file, so a
manifest from anywhere cannot write outside ``root``. Control characters (C0
including tab and newline, DEL, C1) are refused: the artifact digest hashes
``path:digest\n`` lines, which only stay unambiguous while no path holds a
newline.
"""

from __future__ import annotations

from .errors import InvalidValue

MAX_PATH = 4096
# NAME_MAX of common filesystems (ext4, XFS, APFS): a longer component could
# be logged but never downloaded.
MAX_COMPONENT = 255

_CONTROL = frozenset([*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)])
_CONTROL_TABLE = {c: None for c in _CONTROL}


def control_char(value: str) -> str | None:
    """The first control character (C0, DEL, C1) in ``value``, or None."""
    # translate() drops every control character in one C-level pass, so the
    # common clean case costs one comparison of lengths.
    if len(value.translate(_CONTROL_TABLE)) == len(value):
        return None
    return next(ch for ch in value if ord(ch) in _CONTROL)


def check_entry_path(path: object, field: str = "path") -> str:
    """``path`` when it is a valid entry path to write: every rule of the module docstring."""
    return _check(path, field, every_rule=True)


def check_download_path(path: object, field: str = "path") -> str:
    """``path`` when a download may write it: only the rules that keep a write inside the root.

    The other rules (control characters, lengths) apply when an entry is
    added: a version committed before a rule existed stays downloadable.
    """
    return _check(path, field, every_rule=False)


def _check(path: object, field: str, *, every_rule: bool) -> str:
    if not isinstance(path, str):
        raise InvalidValue(f"entry path must be a string, not {type(path).__name__}", field=field)
    problem = _problem(path, every_rule=every_rule)
    if problem:
        raise InvalidValue(f"entry path {path!r} {problem}", field=field)
    return path


def _problem(path: str, *, every_rule: bool) -> str | None:
    try:
        # File names that are not UTF-8 reach Python as lone surrogates; a
        # manifest (protobuf, JSON) cannot carry them.
        path.encode()
    except UnicodeEncodeError:
        return "is not valid UTF-8"
    if not path:
        return "is empty"
    if "\0" in path:
        return "contains NUL"
    if every_rule and (ch := control_char(path)) is not None:
        # A newline let one path spell "aa:<digest>\nb", the digest input of
        # two files; no control character is a path character.
        return f"contains the control character U+{ord(ch):04X}"
    if path.startswith("/") or (len(path) > 1 and path[1] == ":"):
        return "is absolute"
    if every_rule and len(path.encode()) > MAX_PATH:
        return f"is longer than {MAX_PATH} bytes"
    parts = path.split("/")
    if ".." in parts:
        return "contains '..'"
    if any(p in ("", ".") for p in parts):
        return "is not normalized (empty or '.' component)"
    if every_rule and any(len(p.encode()) > MAX_COMPONENT for p in parts):
        return f"has a component longer than {MAX_COMPONENT} bytes"
    return None
