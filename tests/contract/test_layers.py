"""The import layers hold, and each contract breaks when its layer is crossed.

The contracts are pyproject's [tool.importlinter] section, run by
tools/layers.py. A contract that cannot fail protects nothing, so each one
is also run on a copy of the sources with one bad import added, and must
break there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = {
    c["id"]: c for c in tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
}


def _layers(root: Path, *contracts: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, str(ROOT / "tools" / "layers.py"), "--root", str(root)]
    for contract in contracts:
        cmd += ["--contract", contract]
    # Wide: import-linter wraps its report at the terminal's width, chains included.
    return subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "COLUMNS": "300"})


def _module_file(root: Path, module: str) -> Path:
    """depot.services.gc.collector -> root/services/gc/collector.py (the repo layout)."""
    parts = module.split(".")[1:]
    if parts[0] in ("services", "native"):
        base, parts = root / parts[0], parts[1:]
    else:
        base = root / "depot"
    path = base.joinpath(*parts)
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def test_layers_hold() -> None:
    r = _layers(ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"Contracts: {len(CONTRACTS)} kept, 0 broken." in r.stdout


# The SDK module and domain module that get a bad import: whichever is listed first today.
_SDK_MODULE = "depot." + min(p.stem for p in (ROOT / "depot").glob("_*.py") if p.stem != "__init__")
_DOMAIN_MODULE = str(CONTRACTS["domain-no-grpc"]["source_modules"][0])

# (contract id, importer that gets the bad import, what it imports)
CROSSINGS = [
    ("sdk-no-services", _SDK_MODULE, "depot.services.common.errors"),
    ("core-is-bottom", "depot.core", "grpc"),
    ("core-is-bottom", "depot.core", _SDK_MODULE),
    ("core-is-bottom", "depot.core", "depot.services.common.errors"),
    ("private-modules", "depot.services.gc.collector", "depot.services.manifest._s3_plan"),
    ("service-layers", "depot.services.manifest.store", "depot.services.metadata.pages"),
    ("service-layers", "depot.services.gc.collector", "depot.services.metadata.lineage"),
    # The GC crosses into metadata through metadata.public alone.
    ("service-layers", "depot.services.gc.servicer", "depot.services.metadata.access"),
    ("service-layers", "depot.services.common.errors", "depot.services.gc.collector"),
    ("domain-no-grpc", _DOMAIN_MODULE, "grpc"),
    ("domain-no-grpc", "depot.services.gc.collector", "grpc"),
    # A domain module added later is checked without being listed anywhere.
    ("domain-no-grpc", "depot.services.manifest.newcomer", "grpc"),
]


def test_every_contract_is_exercised() -> None:
    assert {c for c, _, _ in CROSSINGS} == set(CONTRACTS)


@pytest.mark.parametrize(("contract", "importer", "imported"), CROSSINGS)
def test_contract_breaks_on_a_crossing(tmp_path: Path, contract: str, importer: str, imported: str) -> None:
    """test_layers_hold checks the same sources without the crossing: this import alone breaks it."""
    copy = tmp_path / "src"
    for folder in ("depot", "services", "native"):
        shutil.copytree(ROOT / folder, copy / folder, ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.c"))
    target = _module_file(copy, importer)
    source = target.read_text() if target.exists() else ""  # or a module added by the test
    target.write_text(f"{source}\nimport {imported}  # the deliberate crossing\n")
    line = source.count("\n") + 2
    r = _layers(copy, contract)
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"{importer} -> {imported} (l.{line})" in r.stdout, r.stdout
