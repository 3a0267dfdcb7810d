"""``depot registry``: an org's registries, their collections, links and members."""

from __future__ import annotations

import argparse

from depot._admin import Admin

from ._args import Actions, command, group
from ._output import last, short, show_message, show_messages

REGISTRY_HELP = "ORG/REGISTRY (REGISTRY or wandb-registry-REGISTRY)"
ROLES = ["admin", "member", "viewer"]


def register(sub: Actions) -> None:
    actions = group(sub, "registry", "registries and links")
    command(actions, "ls", ls, "registries of an org").add_argument("org", help="the org")
    p = command(actions, "create", create, "create a custom registry (org admins)")
    p.add_argument("org", help="the org")
    p.add_argument("name", help="the registry's name")
    p.add_argument("--type", action="append", help="accepted type (repeat; none = any)")
    p.add_argument("--description", default="", help="what the registry holds")
    p.add_argument("--restricted", action="store_true", help="visible to registry members only")
    command(actions, "collections", collections, "collections of ORG/REGISTRY").add_argument("path", help=REGISTRY_HELP)
    command(actions, "links", links, "links of ORG/wandb-registry-R/COLLECTION").add_argument(
        "path", help="{org}/wandb-registry-{registry}/{collection}"
    )
    p = command(actions, "member", member, "give USER a ROLE in ORG/REGISTRY")
    p.add_argument("path", help=REGISTRY_HELP)
    p.add_argument("user", help="the user")
    p.add_argument("role", choices=ROLES, help="the user's role in the registry")
    p = command(actions, "unmember", unmember, "remove USER from ORG/REGISTRY")
    p.add_argument("path", help=REGISTRY_HELP)
    p.add_argument("user", help="the user")


def ls(opts: argparse.Namespace) -> int:
    return show_messages(
        opts,
        Admin().registries(opts.org),
        ["REGISTRY", "TYPES", "VISIBILITY", "ROLE"],
        lambda r: [last(r.name), ",".join(r.accepted_types) or "(any)", r.visibility, r.caller_role],
    )


def create(opts: argparse.Namespace) -> int:
    r = Admin().create_registry(
        opts.org, opts.name, accepted_types=opts.type or [], description=opts.description, restricted=opts.restricted
    )
    return show_message(opts, r, f"created {r.name}")


def collections(opts: argparse.Namespace) -> int:
    return show_messages(
        opts,
        Admin().registry_collections(opts.path),
        ["COLLECTION", "TYPE", "LINKS"],
        lambda c: [last(c.name), c.type, c.link_count],
    )


def links(opts: argparse.Namespace) -> int:
    return show_messages(
        opts,
        Admin().links(opts.path),
        ["LINK", "ALIASES", "VERSION"],
        lambda x: [f"v{x.index}", ",".join(x.aliases), short(x.version.name)],
    )


def member(opts: argparse.Namespace) -> int:
    m = Admin().set_registry_member(opts.path, opts.user, opts.role)
    return show_message(opts, m, f"{opts.user} is {m.role} of {opts.path}")


def unmember(opts: argparse.Namespace) -> int:
    m = Admin().remove_registry_member(opts.path, opts.user)
    return show_message(opts, m, f"removed {opts.user} from {opts.path}")
