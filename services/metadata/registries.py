"""Registries, their collections and links (domain; no grpc).

A registry belongs to an org. Every org has the core registries ``model``
and ``dataset`` (each accepts only its own type); admins add custom ones
that accept a configured list of types, or any. Linking a version into
``entities/{org}/registries/{r}/collections/{c}`` creates the collection if
absent (its type is fixed by the first link), gives the link its own index
v0, v1, ... and aliases in that collection (``latest`` names the newest
link), and is idempotent: linking the same version again returns the link.

Registry roles (registry_access.py): an explicit registry membership, else
admin for org admins, else viewer for org members when the registry's
visibility is ``org``. Reading a linked version needs a registry role only,
not one on the team that logged it — that is what publishing into a
registry is for. Link names resolve in resolver.py, their aliases change in
aliases.py, like any version's.

Registry members follow the org's rule (see accounts.py): a superuser adds
any user; a registry admin below superuser adds only users of the
registry's org, and nobody below a superuser adds, removes or re-roles one.
A registry role is access to the registry's links, never power over the
user who holds it.

Reads never create: a missing org or registry is NOT_FOUND (for callers who
may read the org; others get the same PERMISSION_DENIED as for any entity
they have no role in). Only linking creates a registry collection.

Linking locks the registry collection row, like committing locks the
artifact collection: link indexes are gap-free while links are only added.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

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

from . import names, records
from .access import ADMIN, READ, ROLE_NAMES, WRITE, Access, Principal, Role, parse_role
from .accounts import Member
from .aliases import SET_LINK_ALIASES
from .db import Connection, Database, one
from .deletion import LIVE_VERSION_SHARE
from .names import parse_entity, parse_link, parse_registry, parse_registry_collection
from .pages import PageTokens, page_size
from .records import LinkRef, RegistryCollection, Version
from .registry_access import REGISTRY_SELECT, RegistryAccess, effective_role
from .resolver import Resolver

VISIBILITIES = ("org", "restricted")

_REGISTRY_INSERT = """
    INSERT INTO registries (org_id, name, accepted_types, description, visibility)
    VALUES ($1, $2, $3, $4, $5)
"""
# Every registry of the org ($1) after the cursor ($3), with the caller's ($2)
# roles: those the caller has no role in are left out after reading.
_REGISTRIES_PAGE = REGISTRY_SELECT + " WHERE o.name = $1 AND ($3::text IS NULL OR r.name > $3) ORDER BY r.name"
_MEMBER_SET = """
    INSERT INTO registry_members (registry_id, user_id, role) VALUES ($1, $2, $3)
    ON CONFLICT (registry_id, user_id) DO UPDATE SET role = EXCLUDED.role
"""
_MEMBER_REMOVE = "DELETE FROM registry_members WHERE registry_id = $1 AND user_id = $2 RETURNING role"
# A user by name ($1), and whether they belong to the org ($2).
_USER_IN_ORG = """
    SELECT id, kind, superuser,
           EXISTS (SELECT 1 FROM memberships WHERE entity_id = $2 AND user_id = e.id) AS inside
    FROM entities e WHERE name = $1
"""
_COLLECTIONS_PAGE = """
    SELECT rc.name, rc.type, rc.create_time,
           (SELECT count(*) FROM links l WHERE l.collection_id = rc.id) AS link_count
    FROM registry_collections rc
    WHERE rc.registry_id = $1 AND ($2::text IS NULL OR rc.name > $2)
    ORDER BY rc.name LIMIT $3
"""
# The upsert locks the collection row: links into it go one at a time.
_COLLECTION_UPSERT = """
    INSERT INTO registry_collections (registry_id, name, type) VALUES ($1, $2, $3)
    ON CONFLICT (registry_id, name) DO UPDATE SET name = EXCLUDED.name
    RETURNING id, type
"""
_COLLECTION_LOCK = "SELECT 1 FROM registry_collections WHERE id = $1 FOR UPDATE"
_LINK_OF_VERSION = "SELECT id FROM links WHERE collection_id = $1 AND version_id = $2"
_NEXT_LINK_INDEX = "UPDATE registry_collections SET next_index = next_index + 1 WHERE id = $1 RETURNING next_index - 1"
_LINK_INSERT = "INSERT INTO links (collection_id, version_id, index) VALUES ($1, $2, $3) RETURNING id"
_LINK_DELETE = "DELETE FROM links WHERE id = $1"
# `latest` falls back to the newest link left.
_LATEST_TO_NEWEST_LINK = """
    INSERT INTO link_aliases (collection_id, alias, link_id)
    SELECT collection_id, 'latest', id FROM links WHERE collection_id = $1
    ORDER BY index DESC LIMIT 1
"""

# A link with its collection's name, its aliases and its version (one row
# per link, so a page of links is one query).
_LINK_SELECT = f"""
    SELECT l.id AS link_id, l.index AS link_index, l.create_time AS link_create_time,
           'entities/' || o.name || '/registries/' || rg.name || '/collections/' || rc.name AS link_collection,
           COALESCE((SELECT array_agg(la.alias ORDER BY la.alias COLLATE "C") FROM link_aliases la
                      WHERE la.link_id = l.id), '{{}}') AS link_aliases,
           lv.*
    FROM links l
    JOIN registry_collections rc ON rc.id = l.collection_id
    JOIN registries rg ON rg.id = rc.registry_id
    JOIN entities o ON o.id = rg.org_id
    CROSS JOIN LATERAL ({records.VERSION_SELECT} WHERE v.id = l.version_id) lv
"""
_LINK_BY_ID = _LINK_SELECT + " WHERE l.id = $1"
# Newest first, after the cursor ($3).
_LINKS_PAGE = (
    _LINK_SELECT
    + """
    WHERE rc.registry_id = $1 AND rc.name = $2 AND ($3::int IS NULL OR l.index < $3)
    ORDER BY l.index DESC LIMIT $4
"""
)


@dataclass(frozen=True)
class Registry:
    name: str
    accepted_types: list[str]
    description: str
    core: bool
    visibility: str
    create_time: datetime
    caller_role: Role | None


@dataclass(frozen=True)
class Link:
    collection: str
    index: int
    aliases: tuple[str, ...]
    create_time: datetime
    version: Version

    @property
    def name(self) -> str:
        return f"{self.collection}/versions/v{self.index}"


def _registry(who: Principal, row: asyncpg.Record) -> Registry:
    return Registry(
        name=f"entities/{row['org_name']}/registries/{row['name']}",
        accepted_types=list(row["accepted_types"]),
        description=row["description"],
        core=row["core"],
        visibility=row["visibility"],
        create_time=row["create_time"],
        caller_role=effective_role(who, row),
    )


def _link(row: asyncpg.Record, readable: set[int] | None) -> Link:
    """A ``_LINK_SELECT`` row as seen by a caller who may read the entities ``readable`` (None: all)."""
    ref = LinkRef(row["link_collection"], row["link_index"], tuple(row["link_aliases"]), row["link_create_time"])
    version = records.version(row, ref)
    if readable is not None and row["entity_id"] not in readable:
        version = version.seen_by_registry_reader()
    return Link(ref.collection, ref.index, ref.aliases, ref.create_time, version)


class Registries:
    def __init__(
        self,
        db: Database,
        access: Access,
        pages: PageTokens,
        registry_access: RegistryAccess,
        resolver: Resolver,
    ):
        self._db = db
        self._access = access
        self._pages = pages
        self._registry_access = registry_access
        self._resolver = resolver

    # -- registries ----------------------------------------------------------

    async def create_registry(
        self,
        who: Principal,
        parent: str,
        registry_id: str,
        accepted_types: list[str],
        description: str,
        visibility: str,
    ) -> Registry:
        org = parse_entity(parent, "parent")
        names.check_part(registry_id, "registry_id", "registry")
        types = sorted({names.check_part(t, "registry.accepted_types", "type") for t in accepted_types})
        visibility = visibility or "org"
        if visibility not in VISIBILITIES:
            raise InvalidArgument("registry.visibility must be org or restricted", field="registry.visibility")
        validate.check_text(description, "registry.description", 4096)
        found = await self._access.check(who, org, ADMIN)
        if found.kind != "org":
            raise FailedPrecondition(f"registries belong to orgs; {org!r} is a {found.kind}", field="parent")
        try:
            await self._db.execute(_REGISTRY_INSERT, found.id, registry_id, types, description, visibility)
        except asyncpg.UniqueViolationError:
            raise AlreadyExists(f"registry {registry_id!r} already exists in {org!r}", field="registry_id") from None
        return await self.get_registry(who, f"entities/{org}/registries/{registry_id}")

    async def get_registry(self, who: Principal, name: str) -> Registry:
        org, reg = parse_registry(name)
        return _registry(who, await self._registry_access.require(who, org, reg, READ, "name"))

    async def list_registries(self, who: Principal, parent: str, size: int, token: str) -> tuple[list[Registry], str]:
        org = parse_entity(parent, "parent")
        size = page_size(size)
        scope = f"ListRegistries|{org}"
        cursor = self._pages.decode(scope, token)
        found = await self._access.check(who, org, READ)
        if found.kind != "org":
            raise FailedPrecondition(f"registries belong to orgs; {org!r} is a {found.kind}", field="parent")
        rows = await self._db.fetch(_REGISTRIES_PAGE, org, who.user_id, str(cursor[0]) if cursor else None)
        # Registries the caller has no role in (restricted ones) are left out.
        visible = [r for r in rows if effective_role(who, r) is not None][: size + 1]
        page, nxt = self._pages.next(scope, visible, size, lambda r: [r["name"]])
        return [_registry(who, r) for r in page], nxt

    async def set_member(self, who: Principal, registry: str, user: str, role: str) -> Member:
        org, reg = parse_registry(registry, "registry")
        r = parse_role(role)
        row = await self._registry_access.require(who, org, reg, ADMIN, "registry")
        target = await self._user(who, user, row["org_id"])
        await self._db.execute(_MEMBER_SET, row["id"], target, ROLE_NAMES[r])
        return Member(registry, user, r)

    async def remove_member(self, who: Principal, registry: str, user: str) -> Member:
        org, reg = parse_registry(registry, "registry")
        row = await self._registry_access.require(who, org, reg, ADMIN, "registry")
        target = await self._user(who, user, row["org_id"], adding=False)
        role = await self._db.fetchval(_MEMBER_REMOVE, row["id"], target)
        if role is None:
            raise NotFound(f"{user} is not a member of {registry}", field="user")
        return Member(registry, user, parse_role(role))

    async def _user(self, who: Principal, name: str, org_id: int, *, adding: bool = True) -> int:
        """The id of a user ``who`` may give (or take) a registry role."""
        user = parse_entity(name, "user")
        row = await self._db.fetchrow(_USER_IN_ORG, user, org_id)
        if who.superuser:
            if row is None or row["kind"] != "user":
                raise NotFound(f"no user {user!r}", field="user")
            return int(row["id"])
        if row is not None and row["superuser"]:
            raise PermissionDenied(
                f"{who.user} may not act on {user}: only superusers act on a superuser", field="user"
            )
        if adding and (row is None or row["kind"] != "user" or not row["inside"]):
            # One answer for "no such user" and "a user of another tenant".
            raise PermissionDenied(
                f"{who.user} may give registry roles only to users of the registry's org; {user!r} is not one",
                field="user",
            )
        if row is None or row["kind"] != "user":
            raise NotFound(f"no user {user!r}", field="user")
        return int(row["id"])

    # -- collections and links -------------------------------------------------

    async def list_collections(
        self, who: Principal, parent: str, size: int, token: str
    ) -> tuple[list[RegistryCollection], str]:
        org, reg = parse_registry(parent, "parent")
        size = page_size(size)
        scope = f"ListRegistryCollections|{org}/{reg}"
        cursor = self._pages.decode(scope, token)
        row = await self._registry_access.require(who, org, reg, READ, "parent")
        rows = await self._db.fetch(_COLLECTIONS_PAGE, row["id"], str(cursor[0]) if cursor else None, size + 1)
        page, nxt = self._pages.next(scope, list(rows), size, lambda r: [r["name"]])
        return [
            RegistryCollection(f"{parent}/collections/{r['name']}", r["type"], r["create_time"], r["link_count"])
            for r in page
        ], nxt

    async def link(self, who: Principal, version: str, target: str, aliases: list[str]) -> Link:
        org, reg, coll = parse_registry_collection(target, "target")
        for a in aliases:
            names.check_settable_alias(a)
        registry = await self._registry_access.require(who, org, reg, WRITE, "target")
        src = await self._resolver.resolve(who, version, "version", READ)
        # Publishing needs a role on the team that logged the version. A
        # registry role lets its holder read a linked version, not re-publish
        # it: resolved through a link name, the check above asked only for
        # the registry, and a reader of one registry could link a team's
        # version into another registry (another org's) for anyone there.
        await self._access.require(who, src.entity, READ)
        type_ = src.version.type
        types = list(registry["accepted_types"])
        if types and type_ not in types:
            raise FailedPrecondition(
                f"registry {org}/{reg} accepts {', '.join(types)} artifacts; {version} is a {type_!r}",
                field="version",
                reason=ErrorReason.TYPE_NOT_ACCEPTED,
            )
        async with self._db.transaction() as conn:
            rc = one(await conn.fetchrow(_COLLECTION_UPSERT, registry["id"], coll, type_))
            if rc["type"] != type_:
                raise FailedPrecondition(
                    f"{target} holds {rc['type']!r} artifacts; {version} is a {type_!r}",
                    field="version",
                    reason=ErrorReason.TYPE_MISMATCH,
                )
            if await conn.fetchval(LIVE_VERSION_SHARE, src.id) is None:
                raise NotFound(f"artifact version {version} was deleted", field="version")
            # Linking the same version again returns its link (with any new aliases).
            link_id = await conn.fetchval(_LINK_OF_VERSION, rc["id"], src.id)
            if link_id is None:
                index = await conn.fetchval(_NEXT_LINK_INDEX, rc["id"])
                link_id = await conn.fetchval(_LINK_INSERT, rc["id"], src.id, index)
                aliases = ["latest", *aliases]
            await conn.execute(SET_LINK_ALIASES, rc["id"], link_id, sorted(set(aliases)))
            return await self._link_by_id(who, conn, link_id)

    async def unlink(self, who: Principal, name: str) -> Link:
        parse_link(name)  # a registry link's name, not a version's
        found = await self._resolver.resolve(who, name, "name", WRITE)
        assert found.link_id is not None, "the resolver resolves a registry name to its link"
        async with self._db.transaction() as conn:
            await conn.execute(_COLLECTION_LOCK, found.link_collection_id)
            out = await self._link_by_id(who, conn, found.link_id)
            await conn.execute(_LINK_DELETE, found.link_id)
            if "latest" in out.aliases:
                await conn.execute(_LATEST_TO_NEWEST_LINK, found.link_collection_id)
        return out

    async def _link_by_id(self, who: Principal, conn: Connection, link_id: int) -> Link:
        row = one(await conn.fetchrow(_LINK_BY_ID, link_id))
        return _link(row, await self._access.readable_entities(who))

    async def list_links(self, who: Principal, parent: str, size: int, token: str) -> tuple[list[Link], str]:
        """Newest link first: one query for the page, one for what the caller may read."""
        org, reg, coll = parse_registry_collection(parent)
        size = page_size(size)
        scope = f"ListLinks|{org}/{reg}/{coll}"
        cursor = self._pages.decode(scope, token)
        registry = await self._registry_access.require(who, org, reg, READ, "parent")
        rows = await self._db.fetch(_LINKS_PAGE, registry["id"], coll, int(cursor[0]) if cursor else None, size + 1)
        if not rows and cursor is None:
            await self._registry_access.collection_must_exist(registry["id"], parent, coll)
        page, nxt = self._pages.next(scope, list(rows), size, lambda r: [r["link_index"]])
        readable = await self._access.readable_entities(who) if page else None
        return [_link(r, readable) for r in page], nxt
