"""The ``depot`` command line.

    depot server                                   all services in one process
    depot artifact ls ENTITY/PROJECT/NAME [--alias A] [--tag T]
    depot artifact get PATH [--root D]             download and verify a version
    depot artifact alias add|rm PATH ALIAS...      move aliases onto / off a version
    depot artifact ttl PATH [--set 30d|12h|never|inherit]
    depot artifact link PATH TARGET [--alias A]    TARGET: {org}/wandb-registry-{r}/{c}
    depot artifact lineage PATH [--depth N] [--direction up|down] [--format text|dot]
    depot registry ls ORG | create ORG NAME [--type T]... [--restricted]
    depot registry collections ORG/REGISTRY | links ORG/REGISTRY/COLLECTION
    depot registry member ORG/REGISTRY USER ROLE | unmember ORG/REGISTRY USER
    depot key create [--user U] [--description D] | revoke ID | ls [--user U]
    depot team create NAME [--org ORG] | show NAME | members NAME
    depot team member NAME USER ROLE | unmember NAME USER
    depot team settings NAME [--default-ttl 30d|never] [--ttl-policy members|admins]
    depot user create NAME [--org ORG] | org create NAME | entity ls

PATH is ``entity/project/name[:ref]`` or a registry path
``{org}/wandb-registry-{registry}/{collection}[:ref]``. Tables by default,
``--json`` for scripts. Exit status is non-zero with a one-line reason on error.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from google.protobuf import duration_pb2, field_mask_pb2
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message


def _print(obj: Any, as_json: bool, text: str) -> None:
    print(json.dumps(obj, indent=2, sort_keys=True) if as_json else text)


def _table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    cells = [[str(c) for c in header]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells)


def _out(
    opts: argparse.Namespace, msgs: Sequence[Message], header: Sequence[str], row: Callable[[Any], Sequence[Any]]
) -> int:
    if opts.json:
        print(json.dumps([MessageToDict(m) for m in msgs], indent=2, sort_keys=True))
    else:
        print(_table([row(m) for m in msgs], header))
    return 0


def _one(opts: argparse.Namespace, msg: Message, text: str) -> int:
    _print(MessageToDict(msg), opts.json, text)
    return 0


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: str) -> timedelta:
    """``90s``, ``15m``, ``12h``, ``30d``, ``2w`` (or a plain number of seconds)."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([smhdw]?)", value.strip())
    if not m:
        from depot import InvalidArgumentError

        raise InvalidArgumentError(f"invalid duration {value!r}: use e.g. 90s, 15m, 12h, 30d, 2w")
    return timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2) or "s"])


def _client() -> Any:
    from depot import Client

    return Client()


def _paged(call: Callable[[str], Any], field: str) -> list[Any]:
    out: list[Any] = []
    token = ""
    while True:
        resp = call(token)
        out += list(getattr(resp, field))
        token = resp.next_page_token
        if not token:
            return out


def _rid() -> str:
    from depot._client import request_id

    return request_id()


def _ent(name: str) -> str:
    return name if name.startswith("entities/") else f"entities/{name}"


def _registry_name(path: str) -> str:
    parts = path.split("/")
    if len(parts) != 2:
        from depot import InvalidArgumentError

        raise InvalidArgumentError(f"expected ORG/REGISTRY, got {path!r}")
    return f"entities/{parts[0]}/registries/{parts[1].removeprefix('wandb-registry-')}"


def _short(name: str) -> str:
    """entities/e/projects/p/artifacts/a/versions/v1 -> e/p/a:v1 (and runs, registries)."""
    p = name.split("/")
    if len(p) == 8 and p[2] == "projects":
        return f"{p[1]}/{p[3]}/{p[5]}:{p[7]}"
    if len(p) == 8 and p[2] == "registries":
        return f"{p[1]}/wandb-registry-{p[3]}/{p[5]}:{p[7]}"
    if len(p) == 6 and p[4] == "runs":
        return f"run {p[1]}/{p[3]}/{p[5]}"
    return name


def _ttl_text(v: Any) -> str:
    from depot.metadata.v1 import metadata_pb2 as pb

    if v.ttl_mode == pb.TTL_MODE_FOREVER or not v.HasField("ttl"):
        base = "never expires" if v.ttl_mode != pb.TTL_MODE_INHERIT else "inherit (team: none)"
    else:
        base = f"{v.ttl.ToTimedelta()}" + (" (team default)" if v.ttl_mode == pb.TTL_MODE_INHERIT else "")
    if v.linked:
        base += "; linked into a registry, never expires"
    elif v.HasField("expire_time"):
        base += f"; expires {v.expire_time.ToJsonString()}"
    return base


_SERVER_TLS_FLAGS = {
    "tls_cert": "DEPOT_TLS_CERT",
    "tls_key": "DEPOT_TLS_KEY",
    "tls_client_ca": "DEPOT_TLS_CLIENT_CA",
    "tls_ca": "DEPOT_TLS_CA",
    "tls_client_cert": "DEPOT_TLS_CLIENT_CERT",
    "tls_client_key": "DEPOT_TLS_CLIENT_KEY",
    "tls_server_name": "DEPOT_TLS_SERVER_NAME",
    "health_listen": "DEPOT_HEALTH_LISTEN",
}


def _server(opts: argparse.Namespace) -> int:
    from depot.services.allinone.app import serve
    from depot.services.allinone.config import AllInOneConfig
    from depot.services.common import serving, telemetry

    env = dict(os.environ)
    if opts.workers is not None:
        env["DEPOT_WORKERS"] = str(opts.workers)
    # Flags override the variables of the same name, so workers (which read
    # the environment) get them too.
    for flag, variable in _SERVER_TLS_FLAGS.items():
        if (value := getattr(opts, flag)) is not None:
            env[variable] = value
    try:
        config = AllInOneConfig.from_env(env)
    except ValueError as e:
        print(f"depot: error: {e}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format=telemetry.LOG_FORMAT)
    telemetry.setup("depot")
    serving.run(serve(config))
    return 0


def _artifact(opts: argparse.Namespace) -> int:
    from depot import Api
    from depot._paths import parse_artifact_path
    from depot.metadata.v1 import metadata_pb2 as pb

    api = Api()
    c = api.client
    if opts.action == "get":
        art = api.artifact(opts.path)
        root = art.download(opts.root)
        _print(
            {"path": str(root), "version": art.qualified_name, "digest": art.digest},
            opts.json,
            f"{art.qualified_name} -> {root} (verified)",
        )
        return 0
    if opts.action == "ls":
        p = parse_artifact_path(opts.path)
        versions = _paged(
            lambda t: c.call(
                c.metadata.ListArtifactVersions,
                pb.ListArtifactVersionsRequest(
                    parent=p.collection_resource,
                    page_size=200,
                    page_token=t,
                    alias=opts.alias or "",
                    tag=opts.tag or "",
                ),
            ),
            "versions",
        )
        return _out(
            opts,
            versions,
            ["VERSION", "ALIASES", "TAGS", "SIZE", "CREATED", "DIGEST"],
            lambda v: [
                f"v{v.index}",
                ",".join(v.aliases),
                ",".join(v.tags),
                v.size,
                v.commit_time.ToJsonString()[:19],
                v.digest,
            ],
        )
    if opts.action == "alias":
        p = parse_artifact_path(opts.path)
        if opts.op == "add":
            v = c.call(
                c.metadata.AddAliases,
                pb.AddAliasesRequest(version=p.version_resource, aliases=opts.aliases, request_id=_rid()),
            )
        else:
            v = c.call(
                c.metadata.RemoveAliases,
                pb.RemoveAliasesRequest(version=p.version_resource, aliases=opts.aliases, request_id=_rid()),
            )
        shown = v.link.aliases if v.HasField("link") else v.aliases
        return _one(opts, v, f"{_short(v.link.name or v.name)}: {', '.join(shown) or '(no aliases)'}")
    if opts.action == "ttl":
        p = parse_artifact_path(opts.path)
        if opts.set is None:
            v = c.call(c.metadata.GetArtifactVersion, pb.GetArtifactVersionRequest(name=p.version_resource))
        else:
            upd = pb.ArtifactVersion(name=p.version_resource)
            if opts.set == "never":
                upd.ttl_mode = pb.TTL_MODE_FOREVER
            elif opts.set == "inherit":
                upd.ttl_mode = pb.TTL_MODE_INHERIT
            else:
                upd.ttl_mode = pb.TTL_MODE_DURATION
                upd.ttl.FromTimedelta(parse_duration(opts.set))
            v = c.call(
                c.metadata.UpdateArtifactVersion,
                pb.UpdateArtifactVersionRequest(
                    version=upd, update_mask=field_mask_pb2.FieldMask(paths=["ttl"]), request_id=_rid()
                ),
            )
        return _one(opts, v, f"{_short(v.name)}: {_ttl_text(v)}")
    if opts.action == "link":
        art = api.artifact(opts.path)
        linked = art.link(opts.target, aliases=opts.alias)
        assert linked._version is not None
        return _one(
            opts, linked._version, f"{art.qualified_name} -> {linked.qualified_name} ({', '.join(linked.aliases)})"
        )
    if opts.action == "lineage":
        return _lineage(opts, api)
    if opts.action == "export":
        from depot import export_wandb_manifest

        text = json.dumps(export_wandb_manifest(api.artifact(opts.path)), indent=2)
        if opts.output:
            Path(opts.output).write_text(text + "\n")
        else:
            print(text)
        return 0
    if opts.action in ("put", "import"):
        return _put(opts)
    raise AssertionError(opts.action)


def _put(opts: argparse.Namespace) -> int:
    """``artifact put`` (local files / references) and ``artifact import`` (W&B manifest)."""
    import depot

    p = _target(opts.path)
    if opts.action == "import":
        art = depot.artifact_from_wandb_manifest(opts.manifest, p.name, opts.type, root=opts.root)
    else:
        art = depot.Artifact(p.name, type=opts.type, description=opts.description)
        for item in opts.items:
            if "://" in item:
                art.add_reference(item)
            elif Path(item).is_dir():
                art.add_dir(item)
            else:
                art.add_file(item)
    with depot.init(entity=p.entity, project=p.project, job_type=opts.action) as run:
        run.log_artifact(art, aliases=opts.alias).wait()
    return _one_dict(
        opts,
        {"version": art.qualified_name, "digest": art.digest, "aliases": art.aliases, "size": art.size},
        f"{art.qualified_name} {art.digest} ({', '.join(art.aliases)})",
    )


def _target(path: str) -> Any:
    """ENTITY/PROJECT/NAME for put and import (no alias: the server assigns vN)."""
    from depot._exceptions import InvalidArgumentError
    from depot._paths import parse_artifact_path

    if ":" in path:
        raise InvalidArgumentError(f"{path!r}: give ENTITY/PROJECT/NAME without ':alias'; use --alias")
    return parse_artifact_path(path)


def _one_dict(opts: argparse.Namespace, obj: dict[str, Any], text: str) -> int:
    print(json.dumps(obj, indent=2, sort_keys=True) if getattr(opts, "json", False) else text)
    return 0


def _lineage(opts: argparse.Namespace, api: Any) -> int:
    from depot._lineage import walk
    from depot._paths import parse_artifact_path

    start = parse_artifact_path(opts.path).version_resource
    directions = ["upstream", "downstream"] if opts.direction == "both" else [opts.direction]
    nodes: list[Any] = []
    edges: list[Any] = []
    for d in directions:
        for page in walk(api.client, start, d, opts.depth):
            nodes += [(d, n) for n in page.nodes]
            edges += list(page.edges)
    if opts.json:
        print(
            json.dumps(
                {
                    "start": start,
                    "nodes": [{"direction": d, **MessageToDict(n)} for d, n in nodes],
                    "edges": [MessageToDict(e) for e in edges],
                },
                indent=2,
                sort_keys=True,
            )
        )
    elif opts.format == "dot":
        print(_dot(start, [n for _, n in nodes], edges))
    else:
        lines = [_short(start)]
        for d, n in nodes:
            arrow = "<-" if d == "upstream" else "->"
            lines.append(f"{'  ' * n.depth}{arrow} {_short(n.name)}")
        print("\n".join(lines))
    return 0


def _dot(start: str, nodes: list[Any], edges: list[Any]) -> str:
    def q(s: str) -> str:
        return json.dumps(_short(s))

    out = ["digraph lineage {", "  rankdir=LR;", f"  {q(start)} [shape=box, style=bold];"]
    for n in nodes:
        shape = "ellipse" if n.HasField("run") else "box"
        out.append(f"  {q(n.name)} [shape={shape}];")
    for e in sorted({(e.source, e.target, e.kind) for e in edges}):
        out.append(f"  {q(e[0])} -> {q(e[1])} [label={json.dumps(e[2])}];")
    out.append("}")
    return "\n".join(out)


def _registry(opts: argparse.Namespace) -> int:
    from depot._paths import parse_registry_target
    from depot.metadata.v1 import metadata_pb2 as pb

    c = _client()
    if opts.action == "ls":
        regs = _paged(
            lambda t: c.call(
                c.metadata.ListRegistries, pb.ListRegistriesRequest(parent=_ent(opts.org), page_size=200, page_token=t)
            ),
            "registries",
        )
        return _out(
            opts,
            regs,
            ["REGISTRY", "TYPES", "VISIBILITY", "ROLE"],
            lambda r: [r.name.rsplit("/", 1)[1], ",".join(r.accepted_types) or "(any)", r.visibility, r.caller_role],
        )
    if opts.action == "create":
        r = c.call(
            c.metadata.CreateRegistry,
            pb.CreateRegistryRequest(
                parent=_ent(opts.org),
                registry_id=opts.name,
                request_id=_rid(),
                registry=pb.Registry(
                    accepted_types=opts.type or [],
                    description=opts.description,
                    visibility="restricted" if opts.restricted else "org",
                ),
            ),
        )
        return _one(opts, r, f"created {r.name}")
    if opts.action == "collections":
        cols = _paged(
            lambda t: c.call(
                c.metadata.ListRegistryCollections,
                pb.ListRegistryCollectionsRequest(parent=_registry_name(opts.path), page_size=200, page_token=t),
            ),
            "collections",
        )
        return _out(
            opts, cols, ["COLLECTION", "TYPE", "LINKS"], lambda x: [x.name.rsplit("/", 1)[1], x.type, x.link_count]
        )
    if opts.action == "links":
        target = parse_registry_target(opts.path).collection_resource
        links = _paged(
            lambda t: c.call(c.metadata.ListLinks, pb.ListLinksRequest(parent=target, page_size=200, page_token=t)),
            "links",
        )
        return _out(
            opts,
            links,
            ["LINK", "ALIASES", "VERSION"],
            lambda x: [f"v{x.index}", ",".join(x.aliases), _short(x.version.name)],
        )
    if opts.action == "member":
        m = c.call(
            c.metadata.SetRegistryMember,
            pb.SetRegistryMemberRequest(
                registry=_registry_name(opts.path), user=_ent(opts.user), role=opts.role, request_id=_rid()
            ),
        )
        return _one(opts, m, f"{opts.user} is {m.role} of {opts.path}")
    if opts.action == "unmember":
        m = c.call(
            c.metadata.RemoveRegistryMember,
            pb.RemoveRegistryMemberRequest(registry=_registry_name(opts.path), user=_ent(opts.user), request_id=_rid()),
        )
        return _one(opts, m, f"removed {opts.user} from {opts.path}")
    raise AssertionError(opts.action)


def _key(opts: argparse.Namespace) -> int:
    from depot.metadata.v1 import metadata_pb2 as pb

    c = _client()
    user = _ent(opts.user) if getattr(opts, "user", None) else ""
    if opts.action == "create":
        k = _create_key(c, user, opts.description)
        if not opts.json:
            print(k.key)
            print(f"(key {k.id} for {k.user.split('/')[-1]}; shown once, store it now)", file=sys.stderr)
            return 0
        return _one(opts, k, k.key)
    if opts.action == "revoke":
        k = c.call(c.metadata.RevokeApiKey, pb.RevokeApiKeyRequest(id=opts.id, request_id=_rid()))
        return _one(opts, k, f"revoked {k.id}")
    keys = _paged(
        lambda t: c.call(c.metadata.ListApiKeys, pb.ListApiKeysRequest(user=user, page_size=200, page_token=t)), "keys"
    )
    return _out(
        opts,
        keys,
        ["ID", "DESCRIPTION", "CREATED", "REVOKED"],
        lambda k: [
            k.id,
            k.description,
            k.create_time.ToJsonString()[:19],
            k.revoke_time.ToJsonString()[:19] if k.HasField("revoke_time") else "",
        ],
    )


def _create_key(c: Any, user: str, description: str) -> Any:
    """A new key with its secret.

    The secret is shown once: a CreateApiKey the client retried (its first
    answer lost in transit) comes back with the key's id and no secret. That
    key is unusable to anyone, so it is revoked and another one made.
    """
    from depot import DepotError
    from depot.metadata.v1 import metadata_pb2 as pb

    for _ in range(2):
        k = c.call(
            c.metadata.CreateApiKey, pb.CreateApiKeyRequest(user=user, description=description, request_id=_rid())
        )
        if k.key:
            return k
        c.call(c.metadata.RevokeApiKey, pb.RevokeApiKeyRequest(id=k.id, request_id=_rid()))
    raise DepotError(
        "the server answered CreateApiKey twice without the secret (a retried call); revoked both, try again"
    )


def _entity_text(e: Any) -> str:
    from depot.metadata.v1 import metadata_pb2 as pb

    ttl = e.settings.default_ttl.ToTimedelta() if e.settings.HasField("default_ttl") else "none"
    policy = "admins" if e.settings.ttl_policy == pb.TTL_POLICY_ADMINS else "members"
    org = f", org {e.org.split('/')[-1]}" if e.org else ""
    return (
        f"{e.name.split('/')[-1]} ({e.kind}{org}); your role: {e.caller_role}; "
        f"default TTL: {ttl}; TTLs set by: {policy}"
    )


def _team(opts: argparse.Namespace) -> int:
    from depot.metadata.v1 import metadata_pb2 as pb

    c = _client()
    if opts.action == "create":
        kind = opts.kind
        e = c.call(
            c.metadata.CreateEntity,
            pb.CreateEntityRequest(
                entity_id=opts.name,
                request_id=_rid(),
                entity=pb.Entity(kind=kind, org=_ent(opts.org) if opts.org else ""),
            ),
        )
        return _one(opts, e, f"created {kind} {opts.name}")
    if opts.action == "show":
        e = c.call(c.metadata.GetEntity, pb.GetEntityRequest(name=_ent(opts.name)))
        return _one(opts, e, _entity_text(e))
    if opts.action == "members":
        ms = _paged(
            lambda t: c.call(
                c.metadata.ListMembers, pb.ListMembersRequest(entity=_ent(opts.name), page_size=200, page_token=t)
            ),
            "members",
        )
        return _out(opts, ms, ["USER", "ROLE"], lambda m: [m.user.split("/")[-1], m.role])
    if opts.action == "member":
        m = c.call(
            c.metadata.SetMember,
            pb.SetMemberRequest(entity=_ent(opts.name), user=_ent(opts.user), role=opts.role, request_id=_rid()),
        )
        return _one(opts, m, f"{opts.user} is {m.role} of {opts.name}")
    if opts.action == "unmember":
        m = c.call(
            c.metadata.RemoveMember,
            pb.RemoveMemberRequest(entity=_ent(opts.name), user=_ent(opts.user), request_id=_rid()),
        )
        return _one(opts, m, f"removed {opts.user} from {opts.name}")
    if opts.action == "settings":
        paths, settings = [], pb.EntitySettings()
        if opts.default_ttl is not None:
            paths.append("default_ttl")
            if opts.default_ttl != "never":
                settings.default_ttl.CopyFrom(_duration(parse_duration(opts.default_ttl)))
        if opts.ttl_policy is not None:
            paths.append("ttl_policy")
            settings.ttl_policy = pb.TTL_POLICY_ADMINS if opts.ttl_policy == "admins" else pb.TTL_POLICY_MEMBERS
        if not paths:
            e = c.call(c.metadata.GetEntity, pb.GetEntityRequest(name=_ent(opts.name)))
        else:
            e = c.call(
                c.metadata.UpdateEntitySettings,
                pb.UpdateEntitySettingsRequest(
                    name=_ent(opts.name),
                    settings=settings,
                    request_id=_rid(),
                    update_mask=field_mask_pb2.FieldMask(paths=paths),
                ),
            )
        return _one(opts, e, _entity_text(e))
    if opts.action == "ls":
        es = _paged(
            lambda t: c.call(c.metadata.ListEntities, pb.ListEntitiesRequest(page_size=200, page_token=t)), "entities"
        )
        return _out(
            opts, es, ["ENTITY", "KIND", "ORG"], lambda e: [e.name.split("/")[-1], e.kind, e.org.split("/")[-1]]
        )
    raise AssertionError(opts.action)


def _duration(td: timedelta) -> duration_pb2.Duration:
    d = duration_pb2.Duration()
    d.FromTimedelta(td)
    return d


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output")
    ap = argparse.ArgumentParser(prog="depot", description="Depot artifact store", parents=[common])
    sub = ap.add_subparsers(dest="command", required=True)

    def cmd(parent: Any, name: str, fn: Any, help: str, **kw: Any) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = parent.add_parser(name, help=help, parents=[common])
        p.set_defaults(fn=fn, **kw)
        return p

    p = cmd(sub, "server", _server, "run all services in one process")
    p.add_argument(
        "--workers", type=int, default=None, help="server processes sharing the port (default: DEPOT_WORKERS or 1)"
    )
    tls_help = {
        "tls_cert": "PEM certificate chain to serve TLS with (DEPOT_TLS_CERT)",
        "tls_key": "PEM private key of --tls-cert (DEPOT_TLS_KEY)",
        "tls_client_ca": "require client certificates signed by this CA: mutual TLS (DEPOT_TLS_CLIENT_CA)",
        "tls_ca": "CA that verifies the server's own certificate on its internal calls (DEPOT_TLS_CA)",
        "tls_client_cert": "client certificate for internal calls (DEPOT_TLS_CLIENT_CERT; default: --tls-cert)",
        "tls_client_key": "its key (DEPOT_TLS_CLIENT_KEY; default: --tls-key)",
        "tls_server_name": "name to verify in the certificate on internal calls (DEPOT_TLS_SERVER_NAME)",
        "health_listen": "also answer grpc.health.v1 alone, in plaintext, here (DEPOT_HEALTH_LISTEN)",
    }
    for flag in _SERVER_TLS_FLAGS:
        p.add_argument("--" + flag.replace("_", "-"), dest=flag, default=None, help=tls_help[flag])

    art = sub.add_parser("artifact", help="artifact versions").add_subparsers(dest="action", required=True)
    p = cmd(art, "get", _artifact, "download and verify a version")
    p.add_argument("path")
    p.add_argument("--root", default=None, help="download directory")
    p = cmd(art, "ls", _artifact, "versions of a collection, newest first")
    p.add_argument("path")
    p.add_argument("--alias")
    p.add_argument("--tag")
    p = cmd(art, "alias", _artifact, "add or remove aliases")
    p.add_argument("op", choices=["add", "rm"])
    p.add_argument("path")
    p.add_argument("aliases", nargs="+")
    p = cmd(art, "ttl", _artifact, "show or set a version's TTL")
    p.add_argument("path")
    p.add_argument("--set", help="30d, 12h, 90s, never or inherit")
    p = cmd(art, "link", _artifact, "link a version into a registry collection")
    p.add_argument("path")
    p.add_argument("target")
    p.add_argument("--alias", action="append", default=[])
    p = cmd(art, "put", _artifact, "log files, directories or references as a new version")
    p.add_argument("path", help="ENTITY/PROJECT/NAME")
    p.add_argument("items", nargs="+", help="files, directories, or file://, s3://, http(s):// URIs")
    p.add_argument("--type", required=True)
    p.add_argument("--description")
    p.add_argument("--alias", action="append", default=[])
    p = cmd(art, "export", _artifact, "print a version's manifest as W&B manifest JSON v1")
    p.add_argument("path")
    p.add_argument("-o", "--output", help="write to this file instead of stdout")
    p = cmd(art, "import", _artifact, "log a W&B manifest JSON v1 as a new version")
    p.add_argument("manifest", help="the W&B manifest JSON file")
    p.add_argument("path", help="ENTITY/PROJECT/NAME")
    p.add_argument("--type", required=True)
    p.add_argument("--root", help="where the manifest's uploaded (non-reference) files are")
    p.add_argument("--alias", action="append", default=[])
    p = cmd(art, "lineage", _artifact, "walk the lineage graph")
    p.add_argument("path")
    p.add_argument("--depth", type=int, default=1)
    p.add_argument("--direction", choices=["upstream", "downstream", "both"], default="both")
    p.add_argument("--format", choices=["text", "dot"], default="text")

    reg = sub.add_parser("registry", help="registries and links").add_subparsers(dest="action", required=True)
    cmd(reg, "ls", _registry, "registries of an org").add_argument("org")
    p = cmd(reg, "create", _registry, "create a custom registry (org admins)")
    p.add_argument("org")
    p.add_argument("name")
    p.add_argument("--type", action="append", help="accepted type (repeat; none = any)")
    p.add_argument("--description", default="")
    p.add_argument("--restricted", action="store_true", help="visible to registry members only")
    cmd(reg, "collections", _registry, "collections of ORG/REGISTRY").add_argument("path")
    cmd(reg, "links", _registry, "links of ORG/wandb-registry-R/COLLECTION").add_argument("path")
    p = cmd(reg, "member", _registry, "give USER a ROLE in ORG/REGISTRY")
    p.add_argument("path")
    p.add_argument("user")
    p.add_argument("role", choices=["admin", "member", "viewer"])
    p = cmd(reg, "unmember", _registry, "remove USER from ORG/REGISTRY")
    p.add_argument("path")
    p.add_argument("user")

    key = sub.add_parser("key", help="API keys").add_subparsers(dest="action", required=True)
    p = cmd(key, "create", _key, "create a key (printed once)")
    p.add_argument("--user", help="another user (superusers only)")
    p.add_argument("--description", default="")
    cmd(key, "revoke", _key, "revoke a key by id").add_argument("id")
    cmd(key, "ls", _key, "list keys (never their secrets)").add_argument(
        "--user", help="another user (superusers only)"
    )

    team = sub.add_parser("team", help="teams: members, roles, settings").add_subparsers(dest="action", required=True)
    p = cmd(team, "create", _team, "create a team", kind="team")
    p.add_argument("name")
    p.add_argument("--org")
    cmd(team, "show", _team, "a team and your role").add_argument("name")
    cmd(team, "members", _team, "members and roles").add_argument("name")
    p = cmd(team, "member", _team, "add a member or change their role")
    p.add_argument("name")
    p.add_argument("user")
    p.add_argument("role", choices=["admin", "member", "viewer"])
    p = cmd(team, "unmember", _team, "remove a member")
    p.add_argument("name")
    p.add_argument("user")
    p = cmd(team, "settings", _team, "show or change TTL settings (admins)")
    p.add_argument("name")
    p.add_argument("--default-ttl", help="30d, 12h, ... or never")
    p.add_argument("--ttl-policy", choices=["members", "admins"])
    for kind in ("user", "org"):
        p = cmd(
            sub.add_parser(kind, help=f"{kind}s").add_subparsers(dest="action", required=True),
            "create",
            _team,
            f"create a {kind} (superusers; org admins for users)",
            kind=kind,
        )
        p.add_argument("name")
        if kind == "user":
            p.add_argument("--org")
        else:
            p.set_defaults(org=None)
    ent = sub.add_parser("entity", help="entities").add_subparsers(dest="action", required=True)
    cmd(ent, "ls", _team, "entities you have a role in")
    return ap


def main(argv: list[str] | None = None) -> int:
    opts = _parser().parse_args(argv)
    if not hasattr(opts, "json"):
        opts.json = False
    from depot import DepotError

    try:
        return int(opts.fn(opts))
    except DepotError as e:
        print(f"depot: error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
