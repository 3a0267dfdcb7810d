"""``depot team|user|org|entity``: entities, their members and roles, team TTL settings."""

from __future__ import annotations

import argparse
from datetime import timedelta

from depot._admin import Admin, Keep
from depot.metadata.v1 import metadata_pb2 as pb

from ._args import Actions, command, group, parse_duration
from ._output import last, show_message, show_messages

ROLES = ["admin", "member", "viewer"]


def register(sub: Actions) -> None:
    team = group(sub, "team", "teams: members, roles, settings")
    p = command(team, "create", create, "create a team")
    p.add_argument("name", help="the team's name")
    p.add_argument("--org", help="the org the team belongs to")
    p.set_defaults(kind="team")
    command(team, "show", show, "a team and your role").add_argument("name", help="the team")
    command(team, "members", members, "members and roles").add_argument("name", help="the team")
    p = command(team, "member", member, "add a member or change their role")
    p.add_argument("name", help="the team")
    p.add_argument("user", help="the user")
    p.add_argument("role", choices=ROLES, help="the user's role in the team")
    p = command(team, "unmember", unmember, "remove a member")
    p.add_argument("name", help="the team")
    p.add_argument("user", help="the user")
    p = command(team, "settings", settings, "show or change TTL settings (admins)")
    p.add_argument("name", help="the team")
    p.add_argument("--default-ttl", help="30d, 12h, ... or never")
    p.add_argument("--ttl-policy", choices=["members", "admins"], help="who may set TTLs")

    p = command(group(sub, "user", "users"), "create", create, "create a user (superusers; org admins for users)")
    p.add_argument("name", help="the user's name")
    p.add_argument("--org", help="the org the user joins")
    p.set_defaults(kind="user")
    p = command(group(sub, "org", "orgs"), "create", create, "create an org (superusers)")
    p.add_argument("name", help="the org's name")
    p.set_defaults(kind="org", org=None)

    command(group(sub, "entity", "entities"), "ls", ls, "entities you have a role in")


def create(opts: argparse.Namespace) -> int:
    e = Admin().create_entity(opts.name, opts.kind, org=opts.org)
    return show_message(opts, e, f"created {opts.kind} {opts.name}")


def show(opts: argparse.Namespace) -> int:
    e = Admin().entity(opts.name)
    return show_message(opts, e, _entity_text(e))


def members(opts: argparse.Namespace) -> int:
    return show_messages(opts, Admin().members(opts.name), ["USER", "ROLE"], lambda m: [last(m.user), m.role])


def member(opts: argparse.Namespace) -> int:
    m = Admin().set_member(opts.name, opts.user, opts.role)
    return show_message(opts, m, f"{opts.user} is {m.role} of {opts.name}")


def unmember(opts: argparse.Namespace) -> int:
    m = Admin().remove_member(opts.name, opts.user)
    return show_message(opts, m, f"removed {opts.user} from {opts.name}")


def settings(opts: argparse.Namespace) -> int:
    default_ttl = Keep.KEEP if opts.default_ttl is None else _default_ttl(opts.default_ttl)
    ttl_policy = Keep.KEEP if opts.ttl_policy is None else opts.ttl_policy
    e = Admin().update_entity_settings(opts.name, default_ttl=default_ttl, ttl_policy=ttl_policy)
    return show_message(opts, e, _entity_text(e))


def _default_ttl(text: str) -> timedelta | None:
    return None if text == "never" else parse_duration(text)


def ls(opts: argparse.Namespace) -> int:
    return show_messages(
        opts, Admin().entities(), ["ENTITY", "KIND", "ORG"], lambda e: [last(e.name), e.kind, last(e.org)]
    )


def _entity_text(e: pb.Entity) -> str:
    ttl = e.settings.default_ttl.ToTimedelta() if e.settings.HasField("default_ttl") else "none"
    policy = "admins" if e.settings.ttl_policy == pb.TTL_POLICY_ADMINS else "members"
    org = f", org {last(e.org)}" if e.org else ""
    return f"{last(e.name)} ({e.kind}{org}); your role: {e.caller_role}; default TTL: {ttl}; TTLs set by: {policy}"
