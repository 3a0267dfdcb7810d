"""Entities (users, teams, orgs), their members, settings and API keys (domain; no grpc).

Who may do what:

    create an org                     superusers
    create a team or user             superusers; admins of the org named as its parent
    members, roles, team settings     admins of the entity (org admins for the org's teams)
    add a user to an org or team      superusers: any user; other admins: only users
                                      already in the org (the team's org) or the
                                      entity itself, or any user for a team outside
                                      an org
    API keys of a user                the user itself; superusers. Nobody else, and
                                      no role implies it (there are no org-owned
                                      service accounts: an org admin does not manage
                                      the keys of users it created or added)
    anything acting on a superuser    superusers only (add, remove, change role)
    remove a user from an org         removes them from the org's teams and registries too

Why: membership gives the *added user* access to the entity's data; it must
never give the *adder* power over that user. Org admins once managed the keys
of their org's users, and since any existing user could be added to an org,
an org admin could add the superuser and mint a superuser key. An org is a
tenant boundary, so its admins pull in only users already inside it (a
superuser adds a user to an org, or an org admin creates the user there);
to anyone but a superuser, a missing user, a team or org named as the user
and a user outside the org give the same PERMISSION_DENIED, so names of
other tenants do not leak.

Access is always checked before a transaction opens: a request holding a
connection while it asks the pool for another could exhaust the pool (see
db.Database).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from depot.services.common import validate
from depot.services.common.errors import (
    AlreadyExists,
    ErrorReason,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)

from . import names
from .access import ADMIN, READ, ROLE_NAMES, Access, EntityAccess, Principal, Role, parse_role
from .db import Database, one
from .pages import PageTokens, page_size

KINDS = ("user", "team", "org")
TTL_POLICIES = ("members", "admins")
CORE_REGISTRIES = {"model": ["model"], "dataset": ["dataset"]}


@dataclass
class Entity:
    name: str
    kind: str
    org: str
    create_time: datetime
    default_ttl: timedelta | None
    ttl_policy: str
    caller_role: Role | None = None


@dataclass
class Member:
    parent: str
    user: str
    role: Role


@dataclass
class KeyInfo:
    id: str
    user: str
    description: str
    create_time: datetime
    revoke_time: datetime | None
    key: str = ""


def check_ttl(ttl: timedelta | None, field: str = "ttl") -> timedelta | None:
    """A TTL from one second to 100 years (validate.MAX_TTL); anything else is
    an error, never silently "forever" or a date past the calendar."""
    return validate.check_ttl(ttl, field)


def _not_a_superuser(who: Principal, target: asyncpg.Record, user: str) -> None:
    """Nobody below a superuser adds, removes or re-roles one."""
    if target["superuser"] and not who.superuser:
        raise PermissionDenied(f"{who.user} may not act on {user}: only superusers act on a superuser", field="user")


_ENTITY_SELECT = """
    SELECT e.*, o.name AS org_name FROM entities e LEFT JOIN entities o ON o.id = e.org_id
"""


def _entity(row: asyncpg.Record, role: Role | None = None) -> Entity:
    return Entity(
        name=row["name"],
        kind=row["kind"],
        org=row["org_name"] or "",
        create_time=row["create_time"],
        default_ttl=row["default_ttl"],
        ttl_policy=row["ttl_policy"],
        caller_role=role,
    )


# Revoking twice keeps the first revocation time.
_REVOKE_KEY = "UPDATE api_keys SET revoke_time = COALESCE(revoke_time, now()) WHERE id = $1 RETURNING *"


class Accounts:
    def __init__(self, db: Database, access: Access, pages: PageTokens):
        self._db = db
        self._access = access
        self._pages = pages

    # -- entities ----------------------------------------------------------

    async def create_entity(self, who: Principal, entity_id: str, kind: str, org: str) -> Entity:
        names.check_part(entity_id, "entity_id", "entity")
        if kind not in KINDS:
            raise InvalidArgument("entity.kind must be user, team or org", field="entity.kind")
        org_id = None
        if org:
            org_name = names.parse_entity(org, "entity.org")
            if kind == "org":
                raise InvalidArgument("an org cannot belong to an org", field="entity.org")
            found = await self._access.check(who, org_name, ADMIN)
            if found.kind != "org":
                raise FailedPrecondition(f"{org} is a {found.kind}, not an org", field="entity.org")
            org_id = found.id
        elif not who.superuser:
            raise PermissionDenied(
                f"only superusers create a {kind} outside an org; org admins create teams and users inside their org",
                field="entity.org",
            )
        async with self._db.transaction() as conn:
            try:
                eid = await conn.fetchval(
                    "INSERT INTO entities (name, kind, org_id) VALUES ($1, $2, $3) RETURNING id",
                    entity_id,
                    kind,
                    org_id if kind == "team" else None,
                )
            except asyncpg.UniqueViolationError:
                raise AlreadyExists(f"entity {entity_id!r} already exists", field="entity_id") from None
            if kind == "team" and not who.superuser:
                await conn.execute(
                    "INSERT INTO memberships (entity_id, user_id, role) VALUES ($1, $2, 'admin')",
                    eid,
                    who.user_id,
                )
            if kind == "user" and org_id is not None:
                await conn.execute(
                    "INSERT INTO memberships (entity_id, user_id, role) VALUES ($1, $2, 'member')",
                    org_id,
                    eid,
                )
            if kind == "org":
                await conn.execute(
                    """
                    INSERT INTO registries (org_id, name, core, accepted_types, description)
                    SELECT $1, n, true, ARRAY[n], 'core registry' FROM unnest($2::text[]) AS n
                    """,
                    eid,
                    sorted(CORE_REGISTRIES),
                )
            row = one(await conn.fetchrow(_ENTITY_SELECT + " WHERE e.id = $1", eid))
        self._access.forget_roles()
        return _entity(row, Role.ADMIN)

    async def get_entity(self, who: Principal, name: str) -> Entity:
        found = await self._access.check(who, names.parse_entity(name), READ)
        row = one(await self._db.fetchrow(_ENTITY_SELECT + " WHERE e.id = $1", found.id))
        return _entity(row, found.role)

    async def list_entities(self, who: Principal, kind: str, size: int, token: str) -> tuple[list[Entity], str]:
        if kind and kind not in KINDS:
            raise InvalidArgument("kind must be user, team or org", field="kind")
        size = page_size(size)
        scope = f"ListEntities|{kind}"
        cursor = self._pages.decode(scope, token)
        after = str(cursor[0]) if cursor else None
        rows = await self._db.fetch(
            _ENTITY_SELECT
            + """
            WHERE ($1 OR e.id = $2 OR e.id IN (SELECT entity_id FROM memberships WHERE user_id = $2)
                   OR e.org_id IN (SELECT entity_id FROM memberships
                                    WHERE user_id = $2 AND role = 'admin'))
              AND ($3 = '' OR e.kind = $3) AND ($4::text IS NULL OR e.name > $4)
            ORDER BY e.name LIMIT $5
            """,
            who.superuser,
            who.user_id,
            kind,
            after,
            size + 1,
        )
        page, nxt = self._pages.next(scope, list(rows), size, lambda r: [r["name"]])
        return [_entity(r) for r in page], nxt

    async def update_settings(
        self,
        who: Principal,
        name: str,
        paths: list[str],
        default_ttl: timedelta | None,
        ttl_policy: str,
    ) -> Entity:
        entity = names.parse_entity(name)
        if not paths:
            raise InvalidArgument("update_mask names no field", field="update_mask")
        for p in paths:
            if p not in ("default_ttl", "ttl_policy"):
                raise InvalidArgument(f"cannot update {p!r}: use default_ttl, ttl_policy", field="update_mask")
        if "default_ttl" in paths:
            check_ttl(default_ttl, "settings.default_ttl")
        if "ttl_policy" in paths and ttl_policy not in TTL_POLICIES:
            raise InvalidArgument("settings.ttl_policy must be members or admins", field="settings.ttl_policy")
        found = await self._access.check(who, entity, ADMIN)
        await self._db.execute(
            """
            UPDATE entities SET
                default_ttl = CASE WHEN $2 THEN $3::interval ELSE default_ttl END,
                ttl_policy = CASE WHEN $4 THEN $5 ELSE ttl_policy END
            WHERE id = $1
            """,
            found.id,
            "default_ttl" in paths,
            default_ttl,
            "ttl_policy" in paths,
            ttl_policy,
        )
        self._access.forget_roles()
        row = one(await self._db.fetchrow(_ENTITY_SELECT + " WHERE e.id = $1", found.id))
        return _entity(row, found.role)

    # -- members -----------------------------------------------------------

    async def _user(self, name: str, field: str = "user") -> asyncpg.Record:
        user = names.parse_entity(name, field)
        row = await self._db.fetchrow("SELECT id, kind, superuser FROM entities WHERE name = $1", user)
        if row is None:
            raise NotFound(f"no user {user!r}", field=field)
        if row["kind"] != "user":
            raise FailedPrecondition(f"{name} is a {row['kind']}, not a user", field=field)
        return row

    async def _addable_user(self, who: Principal, found: EntityAccess, user: str) -> asyncpg.Record:
        """The user ``who`` may give a role in ``found`` (see the module docstring)."""
        if who.superuser:
            return await self._user(user)
        name = names.parse_entity(user, "user")
        row = await self._db.fetchrow(
            """
            SELECT u.id, u.kind, u.superuser, t.org_id AS boundary,
                   EXISTS (SELECT 1 FROM memberships m
                            WHERE m.entity_id IN (t.org_id, $2) AND m.user_id = u.id) AS inside
            FROM entities u, (SELECT CASE WHEN kind = 'org' THEN id ELSE org_id END AS org_id
                              FROM entities WHERE id = $2) t
            WHERE u.name = $1
            """,
            name,
            found.id,
        )
        if row is None or row["kind"] != "user" or (row["boundary"] is not None and not row["inside"]):
            # One answer for "no such user", "not a user" and "a user of
            # another tenant"; a current member's role may always change.
            raise PermissionDenied(
                f"{who.user} may add to {found.name!r} only users of its org; {name!r} is not one "
                "(a superuser adds users to an org, or an org admin creates them there)",
                field="user",
            )
        # Only after the tenant check: refusing an outside superuser with its
        # own message would tell any admin which name is the superuser.
        _not_a_superuser(who, row, user)
        return row

    async def set_member(self, who: Principal, entity: str, user: str, role: str) -> Member:
        ename = names.parse_entity(entity, "entity")
        r = parse_role(role)
        found = await self._access.check(who, ename, ADMIN)
        if found.kind == "user":
            raise FailedPrecondition(f"{entity} is a user; only teams and orgs have members", field="entity")
        target = await self._addable_user(who, found, user)
        async with self._db.transaction() as conn:
            # Locks the entity's memberships so two demotions cannot race
            # past the last-admin check together.
            await conn.execute("SELECT 1 FROM entities WHERE id = $1 FOR UPDATE", found.id)
            if r != Role.ADMIN:
                await self._keep_an_admin(conn, found.id, target["id"], entity)
            await conn.execute(
                """
                INSERT INTO memberships (entity_id, user_id, role) VALUES ($1, $2, $3)
                ON CONFLICT (entity_id, user_id) DO UPDATE SET role = EXCLUDED.role
                """,
                found.id,
                target["id"],
                ROLE_NAMES[r],
            )
        self._access.forget_roles()
        return Member(f"entities/{ename}", user, r)

    @staticmethod
    async def _keep_an_admin(conn: Any, entity_id: int, user_id: int, entity: str) -> None:
        admins = await conn.fetch("SELECT user_id FROM memberships WHERE entity_id = $1 AND role = 'admin'", entity_id)
        ids = {a["user_id"] for a in admins}
        if ids == {user_id}:
            raise FailedPrecondition(
                f"{entity} would have no admin left; make someone else admin first",
                field="user",
                reason=ErrorReason.LAST_ADMIN,
            )

    async def remove_member(self, who: Principal, entity: str, user: str) -> Member:
        ename = names.parse_entity(entity, "entity")
        found = await self._access.check(who, ename, ADMIN)
        target = await self._user(user)
        _not_a_superuser(who, target, user)
        async with self._db.transaction() as conn:
            await conn.execute("SELECT 1 FROM entities WHERE id = $1 FOR UPDATE", found.id)
            await self._keep_an_admin(conn, found.id, target["id"], entity)
            role = await conn.fetchval(
                "DELETE FROM memberships WHERE entity_id = $1 AND user_id = $2 RETURNING role",
                found.id,
                target["id"],
            )
            if found.kind == "org" and role is not None:
                await self._leave_org(conn, found.id, target["id"])
        self._access.forget_roles()
        if role is None:
            raise NotFound(f"{user} is not a member of {entity}", field="user")
        return Member(f"entities/{ename}", user, parse_role(role))

    @staticmethod
    async def _leave_org(conn: Any, org_id: int, user_id: int) -> None:
        """A user removed from an org leaves its teams and registries too.

        The org is the tenant boundary (admins add only users already inside
        it), so off-boarding someone from the org must not leave them reading
        its teams' data through a team or registry membership that outlived it.
        """
        await conn.execute(
            """
            DELETE FROM memberships
            WHERE user_id = $2 AND entity_id IN (SELECT id FROM entities WHERE org_id = $1)
            """,
            org_id,
            user_id,
        )
        await conn.execute(
            """
            DELETE FROM registry_members
            WHERE user_id = $2 AND registry_id IN (SELECT id FROM registries WHERE org_id = $1)
            """,
            org_id,
            user_id,
        )

    async def list_members(self, who: Principal, entity: str, size: int, token: str) -> tuple[list[Member], str]:
        ename = names.parse_entity(entity, "entity")
        found = await self._access.check(who, ename, READ)
        size = page_size(size)
        scope = f"ListMembers|{ename}"
        cursor = self._pages.decode(scope, token)
        rows = await self._db.fetch(
            """
            SELECT u.name, m.role FROM memberships m JOIN entities u ON u.id = m.user_id
            WHERE m.entity_id = $1 AND ($2::text IS NULL OR u.name > $2)
            ORDER BY u.name LIMIT $3
            """,
            found.id,
            str(cursor[0]) if cursor else None,
            size + 1,
        )
        page, nxt = self._pages.next(scope, list(rows), size, lambda r: [r["name"]])
        return [Member(f"entities/{ename}", f"entities/{r['name']}", parse_role(r["role"])) for r in page], nxt

    # -- API keys ----------------------------------------------------------

    async def _key_owner(self, who: Principal, user: str) -> tuple[int, str]:
        if not user:
            return who.user_id, who.user
        name = names.parse_entity(user, "user")
        # Decided on the name before any lookup, so the answer says nothing
        # about whether another user exists.
        if not who.superuser and name != who.user:
            raise PermissionDenied(
                f"{who.user} may not manage API keys of {name}: only the user and a superuser do", field="user"
            )
        row = await self._user(user)
        return int(row["id"]), name

    async def create_key(self, who: Principal, user: str, description: str) -> KeyInfo:
        if len(description) > 256:
            raise InvalidArgument("description is longer than 256 characters", field="description")
        user_id, user_name = await self._key_owner(who, user)
        created = await self._access.create_key(user_id, description)
        row = one(await self._db.fetchrow("SELECT * FROM api_keys WHERE id = $1", created.key_id))
        return KeyInfo(
            created.key_id,
            f"entities/{user_name}",
            description,
            row["create_time"],
            None,
            str(created),
        )

    async def revoke_key(self, who: Principal, key_id: str) -> KeyInfo:
        # Key ids are hex (credentials.new_api_key); anything else names no
        # key, and echoing 6,000 characters back would only bloat the error.
        if not key_id or len(key_id) > 64 or key_id.strip("0123456789abcdef"):
            raise InvalidArgument("id must be an API key id (up to 64 lowercase hex digits)", field="id")
        row = await self._db.fetchrow(
            "SELECT k.user_id, e.name FROM api_keys k JOIN entities e ON e.id = k.user_id WHERE k.id = $1",
            key_id,
        )
        if row is None:
            raise NotFound(f"no API key {key_id!r}", field="id")
        if not self._access.may_manage_keys(who, row["user_id"]):
            raise PermissionDenied(f"{who.user} may not revoke this key: only its user and a superuser do", field="id")
        self._access.forget_key(key_id)
        out = one(await self._db.fetchrow(_REVOKE_KEY, key_id))
        return KeyInfo(
            key_id,
            f"entities/{row['name']}",
            out["description"],
            out["create_time"],
            out["revoke_time"],
        )

    async def list_keys(self, who: Principal, user: str, size: int, token: str) -> tuple[list[KeyInfo], str]:
        user_id, user_name = await self._key_owner(who, user)
        size = page_size(size)
        scope = f"ListApiKeys|{user_name}"
        cursor = self._pages.decode(scope, token)
        rows = await self._db.fetch(
            """
            SELECT * FROM api_keys WHERE user_id = $1 AND ($2::text IS NULL OR id > $2)
            ORDER BY id LIMIT $3
            """,
            user_id,
            str(cursor[0]) if cursor else None,
            size + 1,
        )
        page, nxt = self._pages.next(scope, list(rows), size, lambda r: [r["id"]])
        return [
            KeyInfo(r["id"], f"entities/{user_name}", r["description"], r["create_time"], r["revoke_time"])
            for r in page
        ], nxt
