"""The rules the SDK shares with the services (``depot.core``), raising the SDK's exceptions.

Each is the core function itself behind :func:`sdk_rule`, so a bad value
fails here, where it is typed, with the same message the server would give,
and a user catches one tree (``depot.DepotError``) whatever raised.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from depot.core import entry_paths, hashing, json_values, names
from depot.core.errors import InvalidValue

from ._exceptions import InvalidArgumentError

P = ParamSpec("P")
R = TypeVar("R")


def sdk_rule(rule: Callable[P, R]) -> Callable[P, R]:
    """``rule`` raising :class:`InvalidArgumentError` (with its field) instead of InvalidValue."""

    @functools.wraps(rule)
    def checked(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return rule(*args, **kwargs)
        except InvalidValue as e:
            raise InvalidArgumentError(e.message, field=e.field or "") from None

    return checked


check_name = sdk_rule(names.check_name)
check_settable_alias = sdk_rule(names.check_settable_alias)
check_entry_path = sdk_rule(entry_paths.check_entry_path)
check_download_path = sdk_rule(entry_paths.check_download_path)
parse_json = sdk_rule(json_values.parse_json)
new_hasher = sdk_rule(hashing.new_hasher)
