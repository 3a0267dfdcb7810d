"""Registries, their collections and links (domain; no grpc).

A registry belongs to an org. Every org has the core registries ``model``
and ``dataset`` (each accepts only its own type); admins add custom ones
that accept a configured list of types, or any. Linking a version into
``entities/{org}/registries/{r}/collections/{c}`` creates the collection if
absent (its type is fixed by the first link), gives the link its own index
v0, v1, ... and aliases in that collection (``latest`` names the newest
link), and is idempotent: linking the same version again returns the link.

Registry roles: an explicit registry membership, else admin for org admins,
else viewer for org members when the registry's visibility is ``org``.
Reading a linked version needs a registry role only, not one on the team
that logged it — that is what publishing into a registry is for.

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
from typing import Any

import asyncpg

from depot.services.common import validate
from depot.services.common.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)

from . import names
from .access import ADMIN, READ, ROLE_NAMES, WRITE, Access, Principal, Role, parse_role
from .accounts import Member, parse_entity
from .artifacts import _VERSION_SELECT, Artifacts, LinkRef, Version, _version
from .db import Database
from .idempotency import granted
from .pages import PageTokens, page_size

VISIBILITIES = ("org", "restricted")


@dataclass
class Registry:
    name: str
    accepted_types: list[str]
    description: str
    core: bool
    visibility: str
    create_time: datetime
    caller_role: Role | None


@dataclass
class Link:
    collection: str
    index: int
    aliases: list[str]
    create_time: datetime
    version: Version

    @property
    def name(self) -> str:
        return f"{self.collection}/versions/v{self.index}"


def parse_registry(name: str, field: str = "name") -> tuple[str, str]:
    org, reg = names._split(name, field, ("entities", "registries"))
    return names.check_part(org, field, "org"), names.check_part(reg, field, "registry")


def parse_registry_collection(name: str, field: str = "parent") -> tuple[str, str, str]:
    org, reg, coll = names._split(name, field, ("entities", "registries", "collections"))
    return (
        names.check_part(org, field, "org"),
        names.check_part(reg, field, "registry"),
        names.check_part(coll, field, "collection"),
    )


def parse_link(name: str, field: str = "name") -> tuple[str, str, str, str]:
    org, reg, coll, ref = names._split(name, field, ("entities", "registries", "collections", "versions"))
    return (
        names.check_part(org, field, "org"),
        names.check_part(reg, field, "registry"),
        names.check_part(coll, field, "collection"),
        names.check_part(ref, field, "version or alias"),
    )


_REGISTRY_SELECT = """
    SELECT r.*, o.name AS org_name,
           (SELECT role FROM registry_members rm
             WHERE rm.registry_id = r.id AND rm.user_id = $2) AS registry_role,
           (SELECT role FROM memberships m WHERE m.entity_id = o.id AND m.user_id = $2) AS org_role
    FROM registries r JOIN entities o ON o.id = r.org_id
"""


def _effective_role(who: Principal, row: asyncpg.Record) -> Role | None:
    if who.superuser:
        return Role.ADMIN
    roles = []
    if row["registry_role"]:
        roles.append(parse_role(row["registry_role"]))
    if row["org_role"] == "admin":
        roles.append(Role.ADMIN)
    elif row["org_role"] and row["visibility"] == "org":
        roles.append(Role.VIEWER)
    return max(roles) if roles else None


def _registry(who: Principal, row: asyncpg.Record) -> Registry:
    return Registry(
        name=f"entities/{row['org_name']}/registries/{row['name']}",
        accepted_types=list(row["accepted_types"]),
        description=row["description"],
        core=row["core"],
        visibility=row["visibility"],
        create_time=row["create_time"],
        caller_role=_effective_role(who, row),
    )


_VERB = {Role.VIEWER: "read", Role.MEMBER: "link into", Role.ADMIN: "administer"}


_LINK_SELECT = """
    SELECT l.*, rc.id AS rc_id,
           COALESCE((SELECT array_agg(alias ORDER BY alias COLLATE "C") FROM link_aliases
                      WHERE link_id = l.id), '{}') AS link_aliases
    FROM links l JOIN registry_collections rc ON rc.id = l.collection_id
"""
_LINK_BY_INDEX = _LINK_SELECT + " WHERE rc.registry_id = $1 AND rc.name = $2 AND l.index = $3"
# Alias first, uncorrelated, then the link by id: see _VERSION_BY_ALIAS in
# artifacts.py for the plan this avoids (a scan of every link of the collection).
_LINK_BY_ALIAS = (
    _LINK_SELECT
    + """
    WHERE l.id = (
        SELECT la.link_id FROM link_aliases la
        JOIN registry_collections arc ON arc.id = la.collection_id
        WHERE arc.registry_id = $1 AND arc.name = $2 AND la.alias = $3)
"""
)


class Registries:
    def __init__(self, db: Database, access: Access, pages: PageTokens, artifacts: Artifacts):
        self._db = db
        self._access = access
        self._pages = pages
        self._artifacts = artifacts
        artifacts.links = self

    # -- registries ----------------------------------------------------------

    async def _registry_row(self, who: Principal, org: str, registry: str, need: Role, field: str) -> asyncpg.Record:
        row = await self._db.fetchrow(
            _REGISTRY_SELECT + " WHERE o.name = $1 AND r.name = $3", org, who.user_id, registry
        )
        role = _effective_role(who, row) if row is not None else None
        if row is None:
            # Say "not found" only to those who may read the org.
            await self._access.check(who, org, READ)
            raise NotFound(f"no registry {registry!r} in {org!r}", field=field)
        if role is None or role < need:
            raise PermissionDenied(f"{who.user} may not {_VERB[need]} registry {org}/{registry}", field=field)
        granted("registry", row["id"], need)  # re-checked before an idempotent replay
        return row

    async def role(self, who: Principal, registry_id: int) -> Role | None:
        """The caller's current role on a registry (by id), for idempotent replays."""
        row = await self._db.fetchrow(_REGISTRY_SELECT + " WHERE r.id = $1", registry_id, who.user_id)
        return _effective_role(who, row) if row is not None else None

    async def may_read_manifest(self, who: Principal, entity: str, manifest_id: str) -> bool:
        """Whether ``who`` reads a registry that links a live version of ``entity`` with this manifest.

        Registry readers need no role on the team that logged a version to
        download it; this is what the manifest service asks for them.
        """
        if not manifest_id:
            return False
        rows = await self._db.fetch(
            _REGISTRY_SELECT
            + """
            WHERE r.id IN (
                SELECT rc.registry_id FROM links l
                JOIN registry_collections rc ON rc.id = l.collection_id
                JOIN versions v ON v.id = l.version_id
                JOIN collections c ON c.id = v.collection_id
                JOIN projects p ON p.id = c.project_id
                JOIN entities e ON e.id = p.entity_id
                WHERE e.name = $1 AND v.manifest_id = $3 AND v.state = 'committed')
            """,
            entity,
            who.user_id,
            manifest_id,
        )
        return any(_effective_role(who, row) is not None for row in rows)

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
            await self._db.execute(
                """
                INSERT INTO registries (org_id, name, accepted_types, description, visibility)
                VALUES ($1, $2, $3, $4, $5)
                """,
                found.id,
                registry_id,
                types,
                description,
                visibility,
            )
        except asyncpg.UniqueViolationError:
            raise AlreadyExists(f"registry {registry_id!r} already exists in {org!r}", field="registry_id") from None
        return await self.get_registry(who, f"entities/{org}/registries/{registry_id}")

    async def get_registry(self, who: Principal, name: str) -> Registry:
        org, reg = parse_registry(name)
        return _registry(who, await self._registry_row(who, org, reg, READ, "name"))

    async def list_registries(self, who: Principal, parent: str, size: int, token: str) -> tuple[list[Registry], str]:
        org = parse_entity(parent, "parent")
        size = page_size(size)
        scope = f"ListRegistries|{org}"
        cursor = self._pages.decode(scope, token)
        found = await self._access.check(who, org, READ)
        if found.kind != "org":
            raise FailedPrecondition(f"registries belong to orgs; {org!r} is a {found.kind}", field="parent")
        rows = await self._db.fetch(
            _REGISTRY_SELECT
            + """
            WHERE o.name = $1 AND ($3::text IS NULL OR r.name > $3) ORDER BY r.name
            """,
            org,
            who.user_id,
            str(cursor[0]) if cursor else None,
        )
        # Registries the caller has no role in (restricted ones) are left out.
        visible = [r for r in rows if _effective_role(who, r) is not None][: size + 1]
        page, nxt = self._pages.next(scope, visible, size, lambda r: [r["name"]])
        return [_registry(who, r) for r in page], nxt

    async def set_member(self, who: Principal, registry: str, user: str, role: str) -> Member:
        org, reg = parse_registry(registry, "registry")
        r = parse_role(role)
        row = await self._registry_row(who, org, reg, ADMIN, "registry")
        target = await self._user(who, user, row["org_id"])
        await self._db.execute(
            """
            INSERT INTO registry_members (registry_id, user_id, role) VALUES ($1, $2, $3)
            ON CONFLICT (registry_id, user_id) DO UPDATE SET role = EXCLUDED.role
            """,
            row["id"],
            target,
            ROLE_NAMES[r],
        )
        return Member(registry, user, r)

    async def remove_member(self, who: Principal, registry: str, user: str) -> Member:
        org, reg = parse_registry(registry, "registry")
        row = await self._registry_row(who, org, reg, ADMIN, "registry")
        target = await self._user(who, user, row["org_id"], adding=False)
        role = await self._db.fetchval(
            "DELETE FROM registry_members WHERE registry_id = $1 AND user_id = $2 RETURNING role",
            row["id"],
            target,
        )
        if role is None:
            raise NotFound(f"{user} is not a member of {registry}", field="user")
        return Member(registry, user, parse_role(role))

    async def _user(self, who: Principal, name: str, org_id: int, *, adding: bool = True) -> int:
        """The id of a user ``who`` may give (or take) a registry role."""
        user = parse_entity(name, "user")
        row = await self._db.fetchrow(
            """
            SELECT id, kind, superuser,
                   EXISTS (SELECT 1 FROM memberships WHERE entity_id = $2 AND user_id = e.id) AS inside
            FROM entities e WHERE name = $1
            """,
            user,
            org_id,
        )
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
    ) -> tuple[list[dict[str, Any]], str]:
        org, reg = parse_registry(parent, "parent")
        size = page_size(size)
        scope = f"ListRegistryCollections|{org}/{reg}"
        cursor = self._pages.decode(scope, token)
        row = await self._registry_row(who, org, reg, READ, "parent")
        rows = await self._db.fetch(
            """
            SELECT rc.name, rc.type, rc.create_time,
                   (SELECT count(*) FROM links l WHERE l.collection_id = rc.id) AS link_count
            FROM registry_collections rc
            WHERE rc.registry_id = $1 AND ($2::text IS NULL OR rc.name > $2)
            ORDER BY rc.name LIMIT $3
            """,
            row["id"],
            str(cursor[0]) if cursor else None,
            size + 1,
        )
        page, nxt = self._pages.next(scope, list(rows), size, lambda r: [r["name"]])
        return [{**dict(r), "name": f"{parent}/collections/{r['name']}"} for r in page], nxt

    async def link(self, who: Principal, version: str, target: str, aliases: list[str]) -> Link:
        org, reg, coll = parse_registry_collection(target, "target")
        for a in aliases:
            names.check_settable_alias(a)
        reg_row = await self._registry_row(who, org, reg, WRITE, "target")
        src = await self._artifacts._resolve(who, version, "version", READ)
        # Publishing needs a role on the team that logged the version. A
        # registry role lets its holder read a linked version, not re-publish
        # it: resolved through a link name, the check above asked only for
        # the registry, and a reader of one registry could link a team's
        # version into another registry (another org's) for anyone there.
        await self._access.require(who, src["entity_name"], READ)
        types = list(reg_row["accepted_types"])
        if types and src["type"] not in types:
            raise FailedPrecondition(
                f"registry {org}/{reg} accepts {', '.join(types)} artifacts; {version} is a {src['type']!r}",
                field="version",
                reason="TYPE_NOT_ACCEPTED",
            )
        async with self._db.transaction() as conn:
            # The upsert locks the collection row: links into it go one at a time.
            rc = await conn.fetchrow(
                """
                INSERT INTO registry_collections (registry_id, name, type) VALUES ($1, $2, $3)
                ON CONFLICT (registry_id, name) DO UPDATE SET name = EXCLUDED.name
                RETURNING id, type
                """,
                reg_row["id"],
                coll,
                src["type"],
            )
            if rc["type"] != src["type"]:
                raise FailedPrecondition(
                    f"{target} holds {rc['type']!r} artifacts; {version} is a {src['type']!r}",
                    field="version",
                    reason="TYPE_MISMATCH",
                )
            link_id = await conn.fetchval(
                "SELECT id FROM links WHERE collection_id = $1 AND version_id = $2",
                rc["id"],
                src["id"],
            )
            if link_id is None:
                index = await conn.fetchval(
                    """
                    UPDATE registry_collections SET next_index = next_index + 1 WHERE id = $1
                    RETURNING next_index - 1
                    """,
                    rc["id"],
                )
                link_id = await conn.fetchval(
                    "INSERT INTO links (collection_id, version_id, index) VALUES ($1, $2, $3) RETURNING id",
                    rc["id"],
                    src["id"],
                    index,
                )
                aliases = ["latest", *aliases]
            await _set_link_aliases(conn, rc["id"], link_id, aliases)
            return await self._link(who, conn, link_id)

    async def unlink(self, who: Principal, name: str) -> Link:
        row = await self.resolve(who, name, "name", WRITE)
        async with self._db.transaction() as conn:
            await conn.execute(
                "SELECT 1 FROM registry_collections WHERE id = $1 FOR UPDATE",
                row["_link_collection_id"],
            )
            out = await self._link(who, conn, row["_link_id"])
            await conn.execute("DELETE FROM links WHERE id = $1", row["_link_id"])
            if "latest" in out.aliases:
                await conn.execute(
                    """
                    INSERT INTO link_aliases (collection_id, alias, link_id)
                    SELECT collection_id, 'latest', id FROM links WHERE collection_id = $1
                    ORDER BY index DESC LIMIT 1
                    """,
                    row["_link_collection_id"],
                )
        return out

    async def _link(self, who: Principal, conn: Any, link_id: int) -> Link:
        r = await conn.fetchrow(
            """
            SELECT l.*, rc.name AS coll, rg.name AS reg, o.name AS org,
                   COALESCE((SELECT array_agg(alias ORDER BY alias COLLATE "C") FROM link_aliases
                              WHERE link_id = l.id), '{}') AS link_aliases
            FROM links l JOIN registry_collections rc ON rc.id = l.collection_id
            JOIN registries rg ON rg.id = rc.registry_id JOIN entities o ON o.id = rg.org_id
            WHERE l.id = $1
            """,
            link_id,
        )
        v = dict(await conn.fetchrow(_VERSION_SELECT + " WHERE v.id = $1", r["version_id"]))
        if not await self._artifacts.may_read(who, v["entity_name"]):
            v["producer_run"] = None  # registry readers see the version, not the team's runs
        return Link(
            f"entities/{r['org']}/registries/{r['reg']}/collections/{r['coll']}",
            r["index"],
            list(r["link_aliases"]),
            r["create_time"],
            _version(v),
        )

    async def list_links(self, who: Principal, parent: str, size: int, token: str) -> tuple[list[Link], str]:
        """Newest link first."""
        org, reg, coll = parse_registry_collection(parent)
        size = page_size(size)
        scope = f"ListLinks|{org}/{reg}/{coll}"
        cursor = self._pages.decode(scope, token)
        reg_row = await self._registry_row(who, org, reg, READ, "parent")
        rows = await self._db.fetch(
            """
            SELECT l.id, l.index FROM links l JOIN registry_collections rc ON rc.id = l.collection_id
            WHERE rc.registry_id = $1 AND rc.name = $2 AND ($3::int IS NULL OR l.index < $3)
            ORDER BY l.index DESC LIMIT $4
            """,
            reg_row["id"],
            coll,
            int(cursor[0]) if cursor else None,
            size + 1,
        )
        if not rows and cursor is None:
            await self._must_exist(reg_row["id"], parent, coll)
        page, nxt = self._pages.next(scope, list(rows), size, lambda r: [r["index"]])
        async with self._db.connection() as conn:
            return [await self._link(who, conn, r["id"]) for r in page], nxt

    async def _must_exist(self, registry_id: int, name: str, coll: str) -> None:
        """NOT_FOUND for a registry collection nothing was ever linked into."""
        if not await self._db.fetchval(
            "SELECT 1 FROM registry_collections WHERE registry_id = $1 AND name = $2", registry_id, coll
        ):
            raise NotFound(f"registry collection {name} not found", field="parent")

    # -- what artifacts.py delegates for link names ----------------------------

    @staticmethod
    def is_link(name: str) -> bool:
        return name.startswith("entities/") and name.split("/")[2:3] == ["registries"]

    @staticmethod
    def is_link_collection(name: str) -> bool:
        return Registries.is_link(name)

    async def resolve(self, who: Principal, name: str, field: str, need: Role) -> dict[str, Any]:
        """The linked version's row, with the link attached (``_link``)."""
        org, reg, coll, ref = parse_link(name, field)
        reg_row = await self._registry_row(who, org, reg, need, field)
        index = names.version_index(ref)
        sql = _LINK_BY_INDEX if index is not None else _LINK_BY_ALIAS
        link = await self._db.fetchrow(sql, reg_row["id"], coll, ref if index is None else index)
        if link is None:
            raise NotFound(f"registry version {name} not found", field=field)
        row = await self._db.fetchrow(
            _VERSION_SELECT + " WHERE v.id = $1 AND v.state = 'committed'", link["version_id"]
        )
        if row is None:
            raise NotFound(f"the version linked as {name} is gone", field=field)
        out = dict(row)
        if not await self._artifacts.may_read(who, row["entity_name"]):
            out["producer_run"] = None  # registry readers see the version, not the team's runs
        out["_link"] = LinkRef(
            f"entities/{org}/registries/{reg}/collections/{coll}",
            link["index"],
            list(link["link_aliases"]),
            link["create_time"],
        )
        out["_link_id"] = link["id"]
        out["_link_collection_id"] = link["rc_id"]
        return out

    async def add_aliases(self, who: Principal, name: str, aliases: list[str]) -> Version:
        row = await self.resolve(who, name, "version", WRITE)
        async with self._db.transaction() as conn:
            await _set_link_aliases(conn, row["_link_collection_id"], row["_link_id"], aliases)
        return await self._reread(who, row)

    async def remove_aliases(self, who: Principal, name: str, aliases: list[str]) -> Version:
        row = await self.resolve(who, name, "version", WRITE)
        async with self._db.transaction() as conn:
            removed = await conn.fetch(
                "DELETE FROM link_aliases WHERE link_id = $1 AND alias = ANY($2::text[]) RETURNING alias",
                row["_link_id"],
                sorted(set(aliases)),
            )
            missing = set(aliases) - {r["alias"] for r in removed}
            if missing:
                raise NotFound(f"{name} has no alias {', '.join(sorted(missing))}", field="aliases")
        return await self._reread(who, row)

    async def _reread(self, who: Principal, row: dict[str, Any]) -> Version:
        link: LinkRef = row["_link"]
        return _version(await self.resolve(who, link.name, "version", READ))

    async def list_aliases(
        self, who: Principal, parent: str, size: int, token: str
    ) -> tuple[list[tuple[str, str, int]], str]:
        org, reg, coll = parse_registry_collection(parent)
        size = page_size(size)
        scope = f"ListAliases|{parent}"
        cursor = self._pages.decode(scope, token)
        reg_row = await self._registry_row(who, org, reg, READ, "parent")
        rows = await self._db.fetch(
            """
            SELECT la.alias, l.index FROM link_aliases la
            JOIN links l ON l.id = la.link_id
            JOIN registry_collections rc ON rc.id = la.collection_id
            WHERE rc.registry_id = $1 AND rc.name = $2 AND ($3::text IS NULL OR la.alias > $3)
            ORDER BY la.alias LIMIT $4
            """,
            reg_row["id"],
            coll,
            str(cursor[0]) if cursor else None,
            size + 1,
        )
        if not rows and cursor is None:
            await self._must_exist(reg_row["id"], parent, coll)
        page, nxt = self._pages.next(scope, list(rows), size, lambda r: [r["alias"]])
        return [(r["alias"], f"{parent}/versions/v{r['index']}", r["index"]) for r in page], nxt


async def _set_link_aliases(conn: Any, collection_id: int, link_id: int, aliases: list[str]) -> None:
    await conn.execute(
        """
        INSERT INTO link_aliases (collection_id, alias, link_id)
        SELECT $1, a, $2 FROM unnest($3::text[]) AS a
        ON CONFLICT (collection_id, alias) DO UPDATE SET link_id = EXCLUDED.link_id
        """,
        collection_id,
        link_id,
        sorted(set(aliases)),
    )
