"""Name parts and version references: the rules every resource name is made of.

W&B allows artifact names of ``[A-Za-z0-9_.-]`` up to 128 characters; Depot
uses the same rule for every name part (entity, project, artifact, type,
alias, registry, run id) so any name can be pasted into a resource path
without escaping. The SDK checks them too, so a bad name fails where it is
typed, not in a background log.
"""

from __future__ import annotations

import re

from .errors import InvalidValue

_PART = re.compile(r"[A-Za-z0-9_.\-]{1,128}")
_VERSION = re.compile(r"v(0|[1-9][0-9]{0,9})")
RESERVED_ALIASES = frozenset({"latest"})


def check_name(value: object, field: str, what: str) -> str:
    """``value`` when it is a valid name part; ``what`` names it in the message."""
    if not isinstance(value, str) or not _PART.fullmatch(value) or value in (".", ".."):
        raise InvalidValue(
            f"invalid {what} {value!r}: use 1-128 characters of letters, digits, '_', '.', '-'",
            field=field,
        )
    return value


def version_index(ref: str) -> int | None:
    """The index N of a ``vN`` reference, or None when it is an alias."""
    m = _VERSION.fullmatch(ref)
    return int(m.group(1)) if m else None


def check_settable_alias(alias: object, field: str = "aliases") -> str:
    """An alias a caller may set by hand: a valid name, not ``latest`` and not ``vN``."""
    name = check_name(alias, field, "alias")
    if name in RESERVED_ALIASES or version_index(name) is not None:
        raise InvalidValue(f"alias {name!r} is reserved: 'latest' and 'vN' are maintained by Depot", field=field)
    return name
