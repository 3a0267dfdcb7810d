"""Runs mypy --strict over the `depot` package as it is installed.

    python tools/typecheck.py                 # the whole package
    python tools/typecheck.py services/gc     # only report errors under these repo paths

Why a link tree: pyproject maps three repo folders into one import root
(`depot` = depot/, `depot.services` = services/, `depot.native` = native/).
mypy reads the source tree, not the editable install's import hook, so it
cannot see `depot.services` from the repo layout. A temporary tree of
symlinks with the installed shape gives mypy the real module names; the
errors are printed with repo paths again.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Installed name -> repo folder, as [tool.setuptools] package-dir says.
MAPPED = {"services": ROOT / "services", "native": ROOT / "native"}


def build_tree(into: Path) -> Path:
    pkg = into / "depot"
    pkg.mkdir()
    for item in (ROOT / "depot").iterdir():
        if item.name not in MAPPED and item.name != "__pycache__":
            (pkg / item.name).symlink_to(item)
    for name, folder in MAPPED.items():
        (pkg / name).symlink_to(folder)
    return pkg


def repo_path(line: str) -> str:
    """depot/services/gc/x.py:3: ... -> services/gc/x.py:3: ..."""
    for name in MAPPED:
        prefix = f"depot/{name}/"
        if line.startswith(prefix):
            return MAPPED[name].relative_to(ROOT).as_posix() + "/" + line[len(prefix) :]
    return line


def main(argv: list[str]) -> int:
    only = [a.rstrip("/") for a in argv]
    with tempfile.TemporaryDirectory(prefix="depot-typecheck-") as tmp:
        build_tree(Path(tmp))
        cmd = [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(ROOT / ".mypy_cache"),
            "-p",
            "depot",
        ]
        proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, env={**os.environ, "MYPYPATH": ""})
    lines = [repo_path(line) for line in proc.stdout.splitlines()]
    errors = [line for line in lines if ": error:" in line or ": note:" in line]
    if only:
        errors = [line for line in errors if any(line.startswith(p + "/") or line.startswith(p + ":") for p in only)]
    for line in errors:
        print(line)
    if proc.returncode not in (0, 1):
        print(proc.stdout + proc.stderr, file=sys.stderr)
        return proc.returncode
    n = sum(": error:" in line for line in errors)
    print(f"{n} error(s)" + (f" under {', '.join(only)}" if only else ""))
    return 1 if n else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
