"""``depot artifact``: versions of a collection: log, download, list, alias, TTL, link, W&B JSON, delete."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import depot
from depot._admin import Admin
from depot._bulk_delete import DeleteOperation
from depot._paths import ArtifactPath, parse_artifact_path
from depot._progress import Progress
from depot._ttl import TTL
from depot._wandb import write_wandb_manifest
from depot.metadata.v1 import metadata_pb2 as pb

from . import _lineage
from ._args import Actions, command, group, parse_duration
from ._output import short, show, show_message, show_messages, when

PATH_HELP = "entity/project/name[:ref] or {org}/wandb-registry-{registry}/{collection}[:ref] (ref: vN or an alias)"
COLLECTION_HELP = "ENTITY/PROJECT/NAME"


def register(sub: Actions) -> None:
    actions = group(sub, "artifact", "artifact versions")
    p = command(actions, "get", get, "download and verify a version")
    p.add_argument("path", help=PATH_HELP)
    p.add_argument("--root", default=None, help="download directory")
    p.add_argument("--prefix", default=None, help="only the entries in this directory (data: data/..., never data2/)")
    p = command(actions, "ls", ls, "versions of a collection, newest first")
    p.add_argument("path", help=COLLECTION_HELP)
    p.add_argument("--alias", help="only the version with this alias")
    p.add_argument("--tag", help="only versions with this tag")
    p = command(actions, "alias", alias, "add or remove aliases")
    p.add_argument("op", choices=["add", "rm"], help="add: move the aliases onto the version; rm: take them off")
    p.add_argument("path", help=PATH_HELP)
    p.add_argument("aliases", nargs="+", help="alias names")
    p = command(actions, "ttl", ttl, "show or set a version's TTL")
    p.add_argument("path", help=PATH_HELP)
    p.add_argument("--set", help="30d, 12h, 90s, never or inherit")
    p = command(actions, "link", link, "link a version into a registry collection")
    p.add_argument("path", help=PATH_HELP)
    p.add_argument("target", help="{org}/wandb-registry-{registry}/{collection}")
    p.add_argument("--alias", action="append", default=[], help="alias of the link (repeat)")
    p = command(actions, "put", put, "log files, directories or references as a new version")
    p.add_argument("path", help=COLLECTION_HELP)
    p.add_argument("items", nargs="+", help="files, directories, or file://, s3://, http(s):// URIs")
    p.add_argument("--type", required=True, help="artifact type, e.g. dataset or model")
    p.add_argument("--description", help="description of the artifact")
    p.add_argument("--alias", action="append", default=[], help="alias of the new version (repeat)")
    p = command(actions, "export", export, "print a version's manifest as W&B manifest JSON v1")
    p.add_argument("path", help=PATH_HELP)
    p.add_argument("-o", "--output", help="write to this file instead of stdout")
    p = command(actions, "import", import_, "log a W&B manifest JSON v1 as a new version")
    p.add_argument("manifest", help="the W&B manifest JSON file")
    p.add_argument("path", help=COLLECTION_HELP)
    p.add_argument("--type", required=True, help="artifact type, e.g. dataset or model")
    p.add_argument("--root", help="where the manifest's uploaded (non-reference) files are")
    p.add_argument("--alias", action="append", default=[], help="alias of the new version (repeat)")
    p = command(
        actions,
        "rm",
        rm,
        "delete a version, or every version of a collection or project matching a filter (restorable for the "
        "server's grace period)",
    )
    p.add_argument(
        "target",
        nargs="?",
        help=f"one version: {PATH_HELP}; or, with --all or a filter, ENTITY/PROJECT/NAME or ENTITY/PROJECT",
    )
    p.add_argument("--delete-aliases", action="store_true", help="also delete versions that hold custom aliases")
    p.add_argument("--all", action="store_true", help="every live version of the collection or project")
    p.add_argument("--older-than", metavar="AGE", help="only versions committed longer ago (30d, 12h, ...)")
    p.add_argument("--without-aliases", action="store_true", help="only versions holding no alias but latest")
    p.add_argument("--type", help="only collections of this artifact type")
    p.add_argument("--tag", help="only versions with this tag")
    p.add_argument(
        "--metadata", metavar="KEY=JSON", help="only versions whose metadata has KEY equal to JSON (k=1, k='\"a\"')"
    )
    p.add_argument("--dry-run", action="store_true", help="delete nothing: print the count and a sample")
    p.add_argument("--request-id", help="names the operation: run again with the same id to re-attach or resume")
    p.add_argument("--resume", metavar="operations/ID", help="follow (and resume) a bulk delete already started")
    p = command(actions, "undelete", undelete, "restore a deleted version within the grace period")
    p.add_argument("path", help="ENTITY/PROJECT/NAME:vN (aliases do not name deleted versions)")
    _lineage.register(actions, PATH_HELP)


def get(opts: argparse.Namespace) -> int:
    # Streams: entries are fetched as they arrive, with a progress bar on a terminal.
    art = depot.Api().artifact(opts.path)
    root = art.download(opts.root, path_prefix=opts.prefix)
    return show(
        opts,
        {"path": str(root), "version": art.qualified_name, "digest": art.digest},
        f"{art.qualified_name} -> {root} (verified)",
    )


def ls(opts: argparse.Namespace) -> int:
    versions = Admin().versions(opts.path, alias=opts.alias, tag=opts.tag)
    return show_messages(
        opts,
        versions,
        ["VERSION", "ALIASES", "TAGS", "SIZE", "CREATED", "DIGEST"],
        lambda v: [f"v{v.index}", ",".join(v.aliases), ",".join(v.tags), v.size, when(v.commit_time), v.digest],
    )


def alias(opts: argparse.Namespace) -> int:
    admin = Admin()
    if opts.op == "add":
        v = admin.add_aliases(opts.path, opts.aliases)
    else:
        v = admin.remove_aliases(opts.path, opts.aliases)
    # Named through a registry link, the aliases moved are the link's.
    shown = v.link.aliases if v.HasField("link") else v.aliases
    return show_message(opts, v, f"{short(v.link.name or v.name)}: {', '.join(shown) or '(no aliases)'}")


def _ttl_value(text: str) -> TTL:
    if text == "never":
        return None
    if text == "inherit":
        return depot.ArtifactTTL.INHERIT
    return parse_duration(text)


def ttl(opts: argparse.Namespace) -> int:
    admin = Admin()
    v = admin.version(opts.path) if opts.set is None else admin.set_ttl(opts.path, _ttl_value(opts.set))
    return show_message(opts, v, f"{short(v.name)}: {_ttl_text(v)}")


def _ttl_text(v: pb.ArtifactVersion) -> str:
    if v.ttl_mode == pb.TTL_MODE_FOREVER or not v.HasField("ttl"):
        base = "never expires" if v.ttl_mode != pb.TTL_MODE_INHERIT else "inherit (team: none)"
    else:
        base = f"{v.ttl.ToTimedelta()}" + (" (team default)" if v.ttl_mode == pb.TTL_MODE_INHERIT else "")
    if v.linked:
        base += "; linked into a registry, never expires"
    elif v.HasField("expire_time"):
        base += f"; expires {v.expire_time.ToJsonString()}"
    return base


def link(opts: argparse.Namespace) -> int:
    art = depot.Api().artifact(opts.path)
    linked = art.link(opts.target, aliases=opts.alias)
    return show(
        opts,
        {
            "version": linked.qualified_name,
            "source_version": art.qualified_name,
            "aliases": list(linked.aliases),
            "digest": linked.digest,
        },
        f"{art.qualified_name} -> {linked.qualified_name} ({', '.join(linked.aliases)})",
    )


def export(opts: argparse.Namespace) -> int:
    # Written entry by entry as the manifest streams in: memory stays bounded.
    art = depot.Api().artifact(opts.path)
    if not opts.output:
        write_wandb_manifest(art, sys.stdout)
        sys.stdout.write("\n")
        return 0
    target = Path(opts.output)
    # Into a temp file renamed at the end: a failed export leaves no half file.
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "w") as out:
            write_wandb_manifest(art, out)
            out.write("\n")
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return 0


def put(opts: argparse.Namespace) -> int:
    """Local files, directories and references as a new version."""
    target = _new_version_target(opts.path)
    art = depot.Artifact(target.name, type=opts.type, description=opts.description)
    for item in opts.items:
        if "://" in item:
            art.add_reference(item)
        elif Path(item).is_dir():
            art.add_dir(item)
        else:
            art.add_file(item)
    return _log(opts, target, art, "put")


def import_(opts: argparse.Namespace) -> int:
    """A W&B manifest JSON as a new version."""
    target = _new_version_target(opts.path)
    art = depot.artifact_from_wandb_manifest(opts.manifest, target.name, opts.type, root=opts.root)
    return _log(opts, target, art, "import")


def _new_version_target(path: str) -> ArtifactPath:
    """ENTITY/PROJECT/NAME for put and import (no alias: the server assigns vN)."""
    if ":" in path:
        raise depot.InvalidArgumentError(f"{path!r}: give ENTITY/PROJECT/NAME without ':alias'; use --alias")
    return parse_artifact_path(path)


def _log(opts: argparse.Namespace, target: ArtifactPath, art: depot.Artifact, job_type: str) -> int:
    with depot.init(entity=target.entity, project=target.project, job_type=job_type) as run:
        run.log_artifact(art, aliases=opts.alias).wait()
    return show(
        opts,
        {"version": art.qualified_name, "digest": art.digest, "aliases": list(art.aliases), "size": art.size},
        f"{art.qualified_name} {art.digest} ({', '.join(art.aliases)})",
    )


def _bulk_filters(opts: argparse.Namespace) -> dict[str, Any]:
    """The SDK's filter arguments from the flags given (empty when none is)."""
    found: dict[str, Any] = {}
    if opts.older_than:
        found["older_than"] = parse_duration(opts.older_than)
    if opts.without_aliases:
        found["without_aliases"] = True
    if opts.type:
        found["type"] = opts.type
    if opts.tag:
        found["tag"] = opts.tag
    if opts.metadata:
        key, eq, value = opts.metadata.partition("=")
        if not eq or not key:
            raise depot.InvalidArgumentError(f"--metadata {opts.metadata!r}: use KEY=JSON", field="metadata")
        try:
            found["metadata"] = {key: json.loads(value)}
        except ValueError:
            raise depot.InvalidArgumentError(
                f"--metadata {opts.metadata!r}: {value!r} is not JSON (a string is written '\"text\"')",
                field="metadata",
            ) from None
    return found


def rm(opts: argparse.Namespace) -> int:
    if opts.resume:
        if opts.target:
            raise depot.InvalidArgumentError("--resume follows an operation: give no target", field="resume")
        return _follow(opts, depot.Api().delete_operation(opts.resume))
    if not opts.target:
        raise depot.InvalidArgumentError("give what to delete (or --resume operations/ID)", field="target")
    filters = _bulk_filters(opts)
    if ":" in opts.target:
        if filters or opts.all or opts.dry_run or opts.request_id:
            raise depot.InvalidArgumentError(
                f"{opts.target!r} names one version: --all, filters, --dry-run and --request-id are for "
                "ENTITY/PROJECT/NAME or ENTITY/PROJECT",
                field="target",
            )
        return _rm_one(opts)
    if not filters and not opts.all:
        raise depot.InvalidArgumentError(
            f"to delete every version of {opts.target} give --all; or narrow it with a filter "
            "(--older-than, --without-aliases, --type, --tag, --metadata); --dry-run shows what matches",
            field="target",
        )
    op = depot.Api().delete_artifact_versions(
        opts.target,
        delete_aliases=opts.delete_aliases,
        dry_run=opts.dry_run,
        request_id=opts.request_id,
        **filters,
    )
    if opts.dry_run:
        lines = [f"{op.matched:,} versions match (nothing deleted)", *(f"  {short(n)}" for n in op.sample)]
        if op.matched > len(op.sample):
            lines.append(f"  ... and {op.matched - len(op.sample):,} more")
        return show(opts, _op_json(op), "\n".join(lines))
    if not opts.json:
        print(
            f"{op.name}: if interrupted, resume with: depot artifact rm --resume {op.name}"
            f" (or the same command with --request-id)",
            file=sys.stderr,
        )
    return _follow(opts, op)


def _follow(opts: argparse.Namespace, op: DeleteOperation) -> int:
    """Waits for a bulk delete, with a progress bar on a terminal."""
    with Progress(label=f"deleting ({op.name})") as bar:

        def step(o: DeleteOperation) -> None:
            if o.matched and bar.total_objects is None:
                bar.total_objects = o.matched
            bar.advance(o.deleted + o.skipped_aliased + o.skipped_linked - bar.objects)

        op.wait(progress=step)
    text = f"{op.name}: deleted {op.deleted:,} of {op.matched:,} matching versions"
    skipped = [f"{op.skipped_aliased:,} with custom aliases (use --delete-aliases)"] if op.skipped_aliased else []
    skipped += [f"{op.skipped_linked:,} linked into a registry (unlink them first)"] if op.skipped_linked else []
    if skipped:
        text += "; skipped " + ", ".join(skipped)
    return show(opts, _op_json(op), text)


def _op_json(op: DeleteOperation) -> dict[str, Any]:
    return {
        "name": op.name,
        "state": op.state,
        "matched": op.matched,
        "deleted": op.deleted,
        "skipped_aliased": op.skipped_aliased,
        "skipped_linked": op.skipped_linked,
        "sample": op.sample,
    }


def _rm_one(opts: argparse.Namespace) -> int:
    art = depot.Api().artifact(opts.target)
    art.delete(delete_aliases=opts.delete_aliases)
    name = art.qualified_name
    return show(
        opts,
        {"version": name, "deleted": True},
        f"{name}: deleted; `depot artifact undelete {name}` restores it within the server's grace period",
    )


def undelete(opts: argparse.Namespace) -> int:
    out = depot.Api().undelete_artifact(opts.path)
    name = out.artifact.qualified_name
    text = f"{name}: restored"
    if out.restored_aliases:
        text += f"; aliases back: {', '.join(out.restored_aliases)}"
    if out.lost_aliases:
        text += f"; taken meanwhile by other versions (kept there): {', '.join(out.lost_aliases)}"
    data: dict[str, Any] = {"version": name, "restored_aliases": out.restored_aliases, "lost_aliases": out.lost_aliases}
    return show(opts, data, text)
