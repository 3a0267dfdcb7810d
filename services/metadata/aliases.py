"""Aliases set by hand, on versions and on registry links (domain; no grpc).

A version name resolves (resolver.py) to a version, or to a registry link:
an alias added through an artifact name names the version in its
collection, one added through a link name names the link in its registry
collection. ``latest`` and ``vN`` are Depot's (versions.py moves
``latest``; registries.py for links).
"""

from __future__ import annotations

import asyncpg

from depot.services.common.errors import InvalidArgument, NotFound

from . import names, records
from .access import READ, WRITE, Access, Principal
from .db import Database, one
from .deletion import LIVE_VERSION_SHARE
from .fields import check_aliases
from .names import is_link_name, parse_registry_collection
from .pages import PageTokens, page_size
from .projects import Projects
from .records import Alias, Version
from .registry_access import RegistryAccess
from .resolver import Resolved, Resolver

# One statement each: every alias moves to this version (link) atomically.
SET_ALIASES = """
    INSERT INTO aliases (collection_id, alias, version_id)
    SELECT $1, a, $2 FROM unnest($3::text[]) AS a
    ON CONFLICT (collection_id, alias) DO UPDATE SET version_id = EXCLUDED.version_id
"""
SET_LINK_ALIASES = """
    INSERT INTO link_aliases (collection_id, alias, link_id)
    SELECT $1, a, $2 FROM unnest($3::text[]) AS a
    ON CONFLICT (collection_id, alias) DO UPDATE SET link_id = EXCLUDED.link_id
"""
_REMOVE_ALIASES = """
    DELETE FROM aliases WHERE collection_id = $1 AND version_id = $2 AND alias = ANY($3::text[])
    RETURNING alias
"""
_REMOVE_LINK_ALIASES = "DELETE FROM link_aliases WHERE link_id = $1 AND alias = ANY($2::text[]) RETURNING alias"

# Pages of a collection's aliases by alias, after the cursor ($4 / $3).
_ALIASES_PAGE = """
    SELECT a.alias, v.index FROM aliases a
    JOIN versions v ON v.id = a.version_id
    JOIN collections c ON c.id = a.collection_id
    JOIN projects p ON p.id = c.project_id JOIN entities e ON e.id = p.entity_id
    WHERE e.name = $1 AND p.name = $2 AND c.name = $3
      AND ($4::text IS NULL OR a.alias > $4)
    ORDER BY a.alias LIMIT $5
"""
_LINK_ALIASES_PAGE = """
    SELECT la.alias, l.index FROM link_aliases la
    JOIN links l ON l.id = la.link_id
    JOIN registry_collections rc ON rc.id = la.collection_id
    WHERE rc.registry_id = $1 AND rc.name = $2 AND ($3::text IS NULL OR la.alias > $3)
    ORDER BY la.alias LIMIT $4
"""


def _settable(aliases: list[str]) -> None:
    if not aliases:
        raise InvalidArgument("give at least one alias", field="aliases")
    check_aliases(aliases)


class Aliases:
    def __init__(
        self,
        db: Database,
        access: Access,
        pages: PageTokens,
        projects: Projects,
        registry_access: RegistryAccess,
        resolver: Resolver,
    ):
        self._db = db
        self._access = access
        self._pages = pages
        self._projects = projects
        self._registry_access = registry_access
        self._resolver = resolver

    async def add_aliases(self, who: Principal, name: str, aliases: list[str]) -> Version:
        _settable(aliases)
        found = await self._resolver.resolve(who, name, "version", WRITE)
        async with self._db.transaction() as conn:
            if found.link_id is not None:
                await conn.execute(SET_LINK_ALIASES, found.link_collection_id, found.link_id, sorted(set(aliases)))
            else:
                if await conn.fetchval(LIVE_VERSION_SHARE, found.id) is None:
                    raise NotFound(f"artifact version {name} was deleted", field="version")
                await conn.execute(SET_ALIASES, found.collection_id, found.id, sorted(set(aliases)))
        return await self._reread(who, found)

    async def remove_aliases(self, who: Principal, name: str, aliases: list[str]) -> Version:
        _settable(aliases)
        found = await self._resolver.resolve(who, name, "version", WRITE)
        async with self._db.transaction() as conn:
            if found.link_id is not None:
                removed = await conn.fetch(_REMOVE_LINK_ALIASES, found.link_id, sorted(set(aliases)))
            else:
                removed = await conn.fetch(_REMOVE_ALIASES, found.collection_id, found.id, sorted(set(aliases)))
            missing = set(aliases) - {r["alias"] for r in removed}
            if missing:
                # Rolls back: all or nothing.
                raise NotFound(f"{name} has no alias {', '.join(sorted(missing))}", field="aliases")
        return await self._reread(who, found)

    async def _reread(self, who: Principal, found: Resolved) -> Version:
        """The version as it is now; through a link, the link as it is now (by its index)."""
        link = found.version.link
        if link is not None:
            return (await self._resolver.resolve(who, link.name, "version", READ)).version
        # Committed versions are never deleted as rows.
        return records.version(one(await self._db.fetchrow(records.VERSION_BY_ID, found.id)))

    async def list_aliases(self, who: Principal, parent: str, size: int, token: str) -> tuple[list[Alias], str]:
        """The aliases of a collection (artifact or registry), by alias."""
        if is_link_name(parent):
            return await self._list_link_aliases(who, parent, size, token)
        coll = names.parse_collection(parent)
        size = page_size(size)
        scope = f"ListAliases|{coll}"
        cursor = self._pages.decode(scope, token)
        await self._access.require(who, coll.project.entity, READ)
        rows = await self._db.fetch(
            _ALIASES_PAGE,
            coll.project.entity,
            coll.project.project,
            coll.artifact,
            str(cursor[0]) if cursor else None,
            size + 1,
        )
        if not rows and cursor is None:
            await self._projects.must_exist(coll.project, coll.artifact)
        return self._page(scope, rows, size, str(coll))

    async def _list_link_aliases(self, who: Principal, parent: str, size: int, token: str) -> tuple[list[Alias], str]:
        org, reg, coll = parse_registry_collection(parent)
        size = page_size(size)
        scope = f"ListAliases|{parent}"
        cursor = self._pages.decode(scope, token)
        registry = await self._registry_access.require(who, org, reg, READ, "parent")
        rows = await self._db.fetch(
            _LINK_ALIASES_PAGE, registry["id"], coll, str(cursor[0]) if cursor else None, size + 1
        )
        if not rows and cursor is None:
            await self._registry_access.collection_must_exist(registry["id"], parent, coll)
        return self._page(scope, rows, size, parent)

    def _page(self, scope: str, rows: list[asyncpg.Record], size: int, parent: str) -> tuple[list[Alias], str]:
        page, nxt = self._pages.next(scope, list(rows), size, lambda r: [r["alias"]])
        return [Alias(r["alias"], f"{parent}/versions/v{r['index']}", r["index"]) for r in page], nxt
