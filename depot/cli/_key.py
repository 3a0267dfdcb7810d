"""``depot key``: API keys: create (the secret shown once), revoke, list."""

from __future__ import annotations

import argparse
import sys

from depot._admin import Admin

from ._args import Actions, command, group
from ._output import last, show_message, show_messages, when

USER_HELP = "another user (superusers only)"


def register(sub: Actions) -> None:
    actions = group(sub, "key", "API keys")
    p = command(actions, "create", create, "create a key (printed once)")
    p.add_argument("--user", help=USER_HELP)
    p.add_argument("--description", default="", help="what the key is for")
    command(actions, "revoke", revoke, "revoke a key by id").add_argument("id", help="the key's id (dpt_ID_...)")
    command(actions, "ls", ls, "list keys (never their secrets)").add_argument("--user", help=USER_HELP)


def create(opts: argparse.Namespace) -> int:
    k = Admin().create_key(user=opts.user, description=opts.description)
    if opts.json:
        return show_message(opts, k, k.key)
    # The key alone on stdout, so `depot key create > file` stores just it.
    print(k.key)
    print(f"(key {k.id} for {last(k.user)}; shown once, store it now)", file=sys.stderr)
    return 0


def revoke(opts: argparse.Namespace) -> int:
    k = Admin().revoke_key(opts.id)
    return show_message(opts, k, f"revoked {k.id}")


def ls(opts: argparse.Namespace) -> int:
    return show_messages(
        opts,
        Admin().keys(user=opts.user),
        ["ID", "DESCRIPTION", "CREATED", "REVOKED"],
        lambda k: [k.id, k.description, when(k.create_time), when(k.revoke_time) if k.HasField("revoke_time") else ""],
    )
