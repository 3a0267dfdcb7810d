"""The SDK's modules import one way: no cycle, and no import hidden inside a function.

A cycle forced function-level imports and ``Any`` return types before (the
artifact model <-> registry, lineage, references); this keeps it from
coming back. The only import allowed inside a function is of an optional
dependency (botocore, for s3:// downloads only), or of an SDK module that
itself needs one at import time (``_stream_spans`` needs OpenTelemetry).
"""

from __future__ import annotations

import ast
from pathlib import Path

import depot

SDK = Path(depot.__file__).parent
# Optional dependencies an install may lack: imported where they are needed
# (extras s3, gcs, azure; the gRPC instrumentation only when tracing is on).
OPTIONAL = {"botocore", "google", "azure", "opentelemetry"}


def _modules() -> dict[str, ast.Module]:
    # The SDK's private modules and its package; cli is a package of its own.
    files = [SDK / "__init__.py", *sorted(SDK.glob("_*.py"))]
    return {("depot" if f.name == "__init__.py" else f"depot.{f.stem}"): ast.parse(f.read_text()) for f in files}


def _sdk_imports(name: str, tree: ast.Module) -> set[str]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:
                base = "depot" + (f".{node.module}" if node.module else "")
                out |= {base} if node.module else {f"depot.{a.name}" for a in node.names}
            elif node.module and node.module.startswith("depot._"):
                out.add(node.module)
    return {m for m in out if m != name and m.startswith("depot._")}


def test_no_cycle_among_sdk_modules() -> None:
    modules = _modules()
    graph = {name: _sdk_imports(name, tree) for name, tree in modules.items()}
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        assert name not in path, "import cycle: " + " -> ".join([*path[path.index(name) :], name])
        if name in done:
            return
        for dep in sorted(graph.get(name, ())):
            visit(dep, [*path, name])
        done.add(name)

    for name in graph:
        visit(name, [])


def _needs_optional(tree: ast.Module) -> bool:
    """Whether a module imports an optional dependency at its top level."""
    for node in tree.body:
        if isinstance(node, ast.Import):
            mods = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            mods = [node.module or ""]
        else:
            continue
        # "google" alone is also protobuf's and googleapis' namespace, which the SDK always has.
        if any(m.split(".")[0] in OPTIONAL and not m.startswith(("google.protobuf", "google.rpc")) for m in mods):
            return True
    return False


def test_no_import_inside_a_function_but_optional_dependencies() -> None:
    modules = _modules()
    optional_modules = {"." + name.removeprefix("depot.") for name, tree in modules.items() if _needs_optional(tree)}
    assert optional_modules <= {"._stream_spans"}, optional_modules  # any other: say why here
    hidden = []
    for name, tree in modules.items():
        for fn in ast.walk(tree):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                if isinstance(node, ast.Import):
                    mods = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom):
                    mods = ["." * node.level + (node.module or "")]
                else:
                    continue
                hidden += [
                    f"{name}.{fn.name}: {m}"
                    for m in mods
                    if m.split(".")[0] not in OPTIONAL and m not in optional_modules
                ]
    assert not hidden, hidden


def test_no_type_checking_only_imports() -> None:
    # An import under `if TYPE_CHECKING:` is a cycle the runtime does not see.
    guarded = [
        name
        for name, tree in _modules().items()
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
    ]
    assert not guarded, guarded
