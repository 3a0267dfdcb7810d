"""What every command group shares when it declares its arguments."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from datetime import timedelta
from typing import TypeAlias

from depot._exceptions import InvalidArgumentError

# What a command's func gets and returns: the parsed options, the exit status.
Command = Callable[[argparse.Namespace], int]
# What add_subparsers returns; argparse names its type privately (and it is
# generic only to the type checker, hence a string).
Actions: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

JSON_HELP = (
    "machine-readable output: results as JSON on stdout (snake_case fields, integers as numbers, "
    "times as RFC 3339 strings, durations in seconds); an error as "
    '{"error": {"code": "NotFoundError", "reason", "message", "field"}} on stderr (code: the SDK '
    "exception class), exit status 1"
)


def common() -> argparse.ArgumentParser:
    """Options every (sub)command takes, wherever they are typed: ``depot --json x`` = ``depot x --json``."""
    parent = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: a subcommand's default must not overwrite a --json given before it.
    parent.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help=JSON_HELP)
    return parent


def group(sub: Actions, name: str, help: str) -> Actions:
    """A command group (``depot NAME ...``) and the subparsers of its actions."""
    return sub.add_parser(name, help=help, description=help).add_subparsers(
        dest="action", required=True, metavar="ACTION", help=f"what to do (depot {name} ACTION --help for more)"
    )


def command(actions: Actions, name: str, func: Command, help: str) -> argparse.ArgumentParser:
    """A command that runs ``func(opts)``."""
    p = actions.add_parser(name, help=help, description=help, parents=[common()])
    p.set_defaults(func=func)
    return p


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: str) -> timedelta:
    """``90s``, ``15m``, ``12h``, ``30d``, ``2w`` (or a plain number of seconds)."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([smhdw]?)", value.strip())
    if not m:
        raise InvalidArgumentError(f"invalid duration {value!r}: use e.g. 90s, 15m, 12h, 30d, 2w")
    return timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2) or "s"])
