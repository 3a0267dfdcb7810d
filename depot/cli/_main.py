"""The parser (each group's ``register``), dispatch to the chosen ``func``, exit statuses."""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import version

from depot._exceptions import DepotError

from . import _artifact, _doctor, _entity, _gc, _key, _registry, _server
from ._args import common
from ._output import show_error


def parser() -> argparse.ArgumentParser:
    """The whole ``depot`` command tree."""
    ap = argparse.ArgumentParser(prog="depot", description="Depot artifact store", parents=[common()])
    ap.add_argument("--version", action="version", version=f"depot {version('depot')}")
    sub = ap.add_subparsers(
        dest="command", required=True, metavar="COMMAND", help="a command group (depot COMMAND --help for more)"
    )
    _server.register(sub)
    _artifact.register(sub)
    _registry.register(sub)
    _key.register(sub)
    _entity.register(sub)
    _gc.register(sub)
    _doctor.register(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    """Runs one command; its exit status (0, 1 on an error, 2 on a usage error, 130 on Ctrl-C)."""
    opts = parser().parse_args(argv)
    opts.json = getattr(opts, "json", False)
    try:
        status: int = opts.func(opts)
    except DepotError as e:
        show_error(opts.json, e)
        return 1
    except KeyboardInterrupt:
        # The shell's convention for a command ended by SIGINT: 128 + 2.
        print(file=sys.stderr)
        return 130
    return status
