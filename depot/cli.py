"""The ``depot`` command line.

    depot server                         all services in one process (embedded defaults)
    depot artifact get PATH [--root D]   download and verify a version
    depot artifact ls ENTITY/PROJECT/NAME
    depot artifact lineage PATH

Exit status is non-zero with a one-line reason on error; ``--json`` prints
machine-readable output.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from typing import Any

from google.protobuf.json_format import MessageToDict


def _print(obj: Any, as_json: bool, text: str) -> None:
    print(json.dumps(obj, indent=2, sort_keys=True) if as_json else text)


def _server(opts: argparse.Namespace) -> int:
    from depot.services.allinone.app import serve
    from depot.services.common import telemetry
    from depot.services.common.config import Config

    logging.basicConfig(level=logging.INFO, format=telemetry.LOG_FORMAT)
    telemetry.setup("depot")
    asyncio.run(serve(Config.from_env()))
    return 0


def _artifact(opts: argparse.Namespace) -> int:
    from depot import Api

    api = Api()
    if opts.action == "get":
        art = api.artifact(opts.path)
        root = art.download(opts.root)
        _print({"path": str(root), "version": art.qualified_name, "digest": art.digest},
               opts.json, f"{art.qualified_name} -> {root} (verified)")
    elif opts.action == "ls":
        versions = api.artifact_versions(opts.path)
        rows = [{"version": a.version, "aliases": a.aliases, "digest": a.digest, "size": a.size}
                for a in versions]
        text = "\n".join(f"{r['version']:>6}  {r['size']:>12}  {r['digest']}  {','.join(r['aliases'])}"
                         for r in rows)
        _print(rows, opts.json, text)
    elif opts.action == "lineage":
        lin = api.lineage(opts.path)
        d = MessageToDict(lin)
        lines = [lin.version.name, f"  produced by: {lin.producer.name or '-'}"]
        lines += [f"  used by:     {r.name}" for r in lin.consumers]
        _print(d, opts.json, "\n".join(lines))
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="depot", description="Depot artifact store")
    ap.add_argument("--json", action="store_true", help="machine-readable output")
    sub = ap.add_subparsers(dest="command", required=True)
    sub.add_parser("server", help="run all services in one process").set_defaults(fn=_server)
    art = sub.add_parser("artifact", help="artifact versions")
    art.add_argument("action", choices=["get", "ls", "lineage"])
    art.add_argument("path")
    art.add_argument("--root", default=None, help="download directory")
    art.set_defaults(fn=_artifact)
    opts = ap.parse_args(argv)
    from depot import DepotError

    try:
        return int(opts.fn(opts))
    except DepotError as e:
        print(f"depot: error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
