"""``depot artifact``: versions of a collection: log, download, list, alias, TTL, link, W&B JSON."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import depot
from depot._admin import Admin
from depot._paths import ArtifactPath, parse_artifact_path
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
