"""Regenerates the protobuf/gRPC Python code under depot/ from protos/.

    python tools/genproto.py           # write generated files
    python tools/genproto.py --check   # exit 1 if the committed files differ

The generated modules land at depot/<package>/v1/, the import path protoc
derives from the proto package, so they live inside the one `depot` root.
mypy-protobuf (the dev extra's protoc-gen-mypy and protoc-gen-mypy_grpc)
writes the `.pyi` stubs, typed stubs and servicers included, so mypy --strict
checks every call through them.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
PACKAGES = ("common", "metadata", "manifest", "gc")


def _plugin(name: str) -> str:
    # The plugins are console scripts of the interpreter's environment, which
    # need not be on PATH (a venv used without activating it).
    path = Path(sys.executable).parent / name
    found = str(path) if path.exists() else shutil.which(name)
    if found is None:
        raise SystemExit(f"{name} not found: install the dev extra (mypy-protobuf)")
    return found


def generate(out: Path) -> list[Path]:
    import grpc_tools
    from grpc_tools import protoc

    include = Path(grpc_tools.__file__).parent / "_proto"
    files = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))
    args = [
        "protoc",
        f"-I{PROTOS}",
        f"-I{include}",
        f"--plugin=protoc-gen-mypy={_plugin('protoc-gen-mypy')}",
        f"--plugin=protoc-gen-mypy_grpc={_plugin('protoc-gen-mypy_grpc')}",
        f"--python_out={out}",
        f"--mypy_out=quiet:{out}",
        f"--grpc_python_out={out}",
        f"--mypy_grpc_out=quiet:{out}",
        *files,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    generated = []
    for name in PACKAGES:
        pkg = out / "depot" / name
        for d in (pkg, pkg / "v1"):
            init = d / "__init__.py"
            init.write_text('"""Generated from protos/; do not edit."""\n')
        generated += sorted(p for p in pkg.rglob("*") if p.is_file())
    return generated


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="fail if committed code is stale")
    opts = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        generated = generate(out)
        stale = []
        for f in generated:
            rel = f.relative_to(out)
            dest = ROOT / rel
            if opts.check:
                if not dest.exists() or not filecmp.cmp(f, dest, shallow=False):
                    stale.append(str(rel))
            else:
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(f, dest)
        if opts.check and stale:
            print("generated code is stale; run `python tools/genproto.py`:", *stale, sep="\n  ")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
