"""Both implementations of the native engine, as loaded for the tests.

Every native test runs on both implementations: the compiled module and its twin.

The compiled modules are imported directly, so a missing or broken build fails
here instead of silently testing the twin twice (unless DEPOT_NO_EXTENSIONS is
set, in which case only the twins run).
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import NamedTuple

NO_EXT = bool(os.environ.get("DEPOT_NO_EXTENSIONS"))


class Impl(NamedTuple):
    name: str
    hashing: ModuleType
    s3page: ModuleType
    manifest: ModuleType


def _load(suffix: str) -> Impl:
    mods = [importlib.import_module(f"depot.native._{m}{suffix}") for m in ("hashing", "s3page", "manifest")]
    return Impl("python" if suffix else "compiled", *mods)


IMPLS = [_load("_py")] + ([] if NO_EXT else [_load("")])
