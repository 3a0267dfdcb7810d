"""JSON from callers (artifact metadata, run config, entry extras), bounded.

A value is refused unless PostgreSQL ``jsonb`` and our own ``json.dumps``
can hold it: at most ``MAX_JSON_DEPTH`` levels (deeper input overflowed the
parser's recursion), finite numbers only (``NaN``, ``Infinity`` and
``1e999`` are not JSON values PostgreSQL accepts), and no NUL or lone
surrogates in strings or keys (``jsonb`` cannot hold them).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any, NoReturn

from .errors import InvalidValue

MAX_JSON_DEPTH = 64


def _bad_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text} is out of range")
    return value


def loads(text: str, object_pairs_hook: Callable[[list[tuple[str, Any]]], Any] | None = None) -> Any:
    """``json.loads`` refusing ``NaN``, ``Infinity`` and numbers out of a float's range (ValueError)."""
    return json.loads(
        text, parse_constant=_bad_constant, parse_float=_finite_float, object_pairs_hook=object_pairs_hook
    )


def _check_string(s: str, field: str) -> None:
    if "\0" in s:
        raise InvalidValue(f"{field} holds a string with a NUL character", field=field)
    try:
        s.encode()
    except UnicodeEncodeError:
        raise InvalidValue(f"{field} holds a string with an unpaired surrogate", field=field) from None


def _check_tree(value: Any, field: str, max_depth: int) -> None:
    # Iterative, so a tree exactly at the limit costs no recursion either.
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            if depth > max_depth:
                raise InvalidValue(f"{field} is nested deeper than {max_depth} levels", field=field)
            for k, v in node.items():
                _check_string(k, field)
                stack.append((v, depth + 1))
        elif isinstance(node, list):
            if depth > max_depth:
                raise InvalidValue(f"{field} is nested deeper than {max_depth} levels", field=field)
            stack.extend((v, depth + 1) for v in node)
        elif isinstance(node, str):
            _check_string(node, field)


def parse_json(
    text: str,
    field: str,
    *,
    max_bytes: int | None = None,
    max_depth: int = MAX_JSON_DEPTH,
    object_only: bool = False,
) -> Any:
    """The JSON value of ``text`` (any JSON value: the caller's), refused as the module docstring says."""
    if max_bytes is not None and len(text.encode(errors="surrogatepass")) > max_bytes:
        raise InvalidValue(f"{field} is larger than {max_bytes} bytes", field=field)
    try:
        value = loads(text)
    except RecursionError:
        raise InvalidValue(f"{field} is nested deeper than {max_depth} levels", field=field) from None
    except ValueError as e:
        raise InvalidValue(f"{field} is not valid JSON: {e}", field=field) from None
    _check_tree(value, field, max_depth)
    if object_only and not isinstance(value, dict):
        raise InvalidValue(f"{field} must be a JSON object", field=field)
    return value
