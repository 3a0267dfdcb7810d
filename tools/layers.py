"""Checks the import layers: the [tool.importlinter] contracts in pyproject.toml.

    python tools/layers.py               # the repository
    python tools/layers.py --root DIR    # another checkout (DIR/depot, DIR/services, DIR/native)
    python tools/layers.py --contract ID # only that contract (its `id` in pyproject)

Why a tree: import-linter (grimp) finds a package's modules from the folder
its top package lives in, and pyproject maps three repo folders into one
import root (`depot` = depot/, `depot.services` = services/, `depot.native`
= native/), so in the repo layout `depot.services` does not exist. As in
tools/typecheck.py, a temporary tree of symlinks with the installed shape
gives import-linter the real module names. grimp reads only `.py` files, so
each compiled module is linked there as its `.pyi` stub: an import of
`depot.native._hashing` then finds its module instead of being misread as
an import of `depot`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Installed name -> repo folder, as [tool.setuptools] package-dir says.
MAPPED = ("services", "native")


def build_tree(root: Path, into: Path) -> None:
    """Links ``root``'s three folders into ``into/depot`` in the installed shape."""
    pkg = into / "depot"
    pkg.mkdir()
    for item in (root / "depot").iterdir():
        if item.name not in MAPPED and item.name != "__pycache__":
            (pkg / item.name).symlink_to(item)
    (pkg / "services").symlink_to(root / "services")
    native = pkg / "native"
    native.mkdir()
    for item in (root / "native").iterdir():
        if item.suffix in (".py", ".pyi"):
            (native / item.name).symlink_to(item)
    for stub in (root / "native").glob("*.pyi"):
        if not (native / f"{stub.stem}.py").exists():
            (native / f"{stub.stem}.py").symlink_to(stub)


def lint(tree: Path, contracts: list[str]) -> int:
    """Runs lint-imports over ``tree`` (which holds the `depot` package); its exit code."""
    exe = Path(sys.executable).parent / "lint-imports"
    # The tree first on the path: import-linter must find this `depot`, not the installed one.
    env = {**os.environ, "PYTHONPATH": str(tree)}
    cmd = [str(exe), str(ROOT / "pyproject.toml"), "--no-cache"]
    for contract in contracts:
        cmd += ["--contract", contract]
    return subprocess.run(cmd, cwd=tree, env=env).returncode


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout to check (default: this one)")
    parser.add_argument("--contract", action="append", default=[], help="check only this contract (repeatable)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="depot-layers-") as tmp:
        build_tree(args.root.resolve(), Path(tmp))
        return lint(Path(tmp), args.contract)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
