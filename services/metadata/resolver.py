"""One resolver for version names (domain; no grpc).

A version is named three ways, and every part that takes a version name
(versions, aliases, lineage, registries) resolves it here:

    entities/E/projects/P/artifacts/C/versions/vN        by index
    entities/E/projects/P/artifacts/C/versions/ALIAS     by alias
    entities/O/registries/R/collections/C/versions/REF   through a registry link (vN or alias)

A name is resolved with its access check: a role on the entity for an
artifact name, a registry role for a link name (a registry reader needs no
role on the team that logged the version).
"""

from __future__ import annotations

from dataclasses import dataclass

from depot.services.common.errors import NotFound

from . import names, records
from .access import READ, Access, Principal, Role
from .db import Database
from .records import LinkRef, Version
from .registry_access import RegistryAccess

# The version an alias names, found first (uncorrelated, see VERSION_BY_ALIAS).
ALIASED_VERSION_ID = """v.id = (
        SELECT a.version_id FROM aliases a
        JOIN collections ac ON ac.id = a.collection_id
        JOIN projects ap ON ap.id = ac.project_id
        JOIN entities ae ON ae.id = ap.entity_id
        WHERE ae.name = $1 AND ap.name = $2 AND ac.name = $3 AND a.alias = $4)"""
VERSION_BY_INDEX = (
    records.VERSION_SELECT
    + " WHERE e.name = $1 AND p.name = $2 AND c.name = $3 AND v.state = 'committed' AND v.index = $4"
)
# The alias is looked up first, in an uncorrelated subquery (one index probe),
# then its version by id. Written as a filter correlated with the collection,
# the planner scanned every version of the collection once alias moves
# outran its statistics, so resolving got slower with every commit
# (bench/metadata.py: 1,474 -> 525 ops/s after 3,000 more commits).
VERSION_BY_ALIAS = f"{records.VERSION_SELECT} WHERE v.state = 'committed' AND {ALIASED_VERSION_ID}"

_LINK_SELECT = """
    SELECT l.*, rc.id AS rc_id,
           COALESCE((SELECT array_agg(alias ORDER BY alias COLLATE "C") FROM link_aliases
                      WHERE link_id = l.id), '{}') AS link_aliases
    FROM links l JOIN registry_collections rc ON rc.id = l.collection_id
"""
_LINK_BY_INDEX = _LINK_SELECT + " WHERE rc.registry_id = $1 AND rc.name = $2 AND l.index = $3"
# Alias first, uncorrelated, then the link by id: the plan VERSION_BY_ALIAS
# avoids (a scan of every link of the collection).
_LINK_BY_ALIAS = (
    _LINK_SELECT
    + """
    WHERE l.id = (
        SELECT la.link_id FROM link_aliases la
        JOIN registry_collections arc ON arc.id = la.collection_id
        WHERE arc.registry_id = $1 AND arc.name = $2 AND la.alias = $3)
"""
)
_LIVE_VERSION_BY_ID = records.VERSION_SELECT + " WHERE v.id = $1 AND v.state = 'committed'"


@dataclass(frozen=True)
class Resolved:
    """A committed version a name resolved to, with the ids the domain needs to act on it."""

    version: Version
    id: int
    collection_id: int
    # The entity that logged it.
    entity: str
    producer_run_id: int | None
    # Set when the name was a registry link's (the link is version.link).
    link_id: int | None = None
    link_collection_id: int | None = None


class Resolver:
    def __init__(self, db: Database, access: Access, registry_access: RegistryAccess):
        self._db = db
        self._access = access
        self._registry_access = registry_access

    async def resolve(self, who: Principal, name: str, field: str, need: Role = READ) -> Resolved:
        """The committed version ``name`` refers to, if ``who`` holds ``need`` on it."""
        if names.is_link_name(name):
            return await self._resolve_link(who, name, field, need)
        vn = names.parse_version(name, field)
        proj = vn.collection.project
        await self._access.require(who, proj.entity, need)
        index = names.version_index(vn.ref)
        if index is not None:
            row = await self._db.fetchrow(VERSION_BY_INDEX, proj.entity, proj.project, vn.collection.artifact, index)
        else:
            row = await self._db.fetchrow(VERSION_BY_ALIAS, proj.entity, proj.project, vn.collection.artifact, vn.ref)
        if row is None:
            raise NotFound(f"artifact version {name} not found", field=field)
        return Resolved(
            records.version(row), row["id"], row["collection_id"], row["entity_name"], row["producer_run_id"]
        )

    async def _resolve_link(self, who: Principal, name: str, field: str, need: Role) -> Resolved:
        org, reg, coll, ref = names.parse_link(name, field)
        registry = await self._registry_access.require(who, org, reg, need, field)
        index = names.version_index(ref)
        if index is not None:
            link = await self._db.fetchrow(_LINK_BY_INDEX, registry["id"], coll, index)
        else:
            link = await self._db.fetchrow(_LINK_BY_ALIAS, registry["id"], coll, ref)
        if link is None:
            raise NotFound(f"registry version {name} not found", field=field)
        row = await self._db.fetchrow(_LIVE_VERSION_BY_ID, link["version_id"])
        if row is None:
            raise NotFound(f"the version linked as {name} is gone", field=field)
        ref_ = LinkRef(
            f"entities/{org}/registries/{reg}/collections/{coll}",
            link["index"],
            tuple(link["link_aliases"]),
            link["create_time"],
        )
        version = records.version(row, ref_)
        if not await self.may_read(who, row["entity_name"]):
            version = version.seen_by_registry_reader()
        return Resolved(
            version,
            row["id"],
            row["collection_id"],
            row["entity_name"],
            row["producer_run_id"],
            link_id=link["id"],
            link_collection_id=link["rc_id"],
        )

    async def may_read(self, who: Principal, entity: str) -> bool:
        """Whether ``who`` holds a role on ``entity`` (a registry role is not one)."""
        found = await self._access.lookup(who, entity)
        return found is not None and found.role is not None
