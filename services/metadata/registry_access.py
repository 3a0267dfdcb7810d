"""Who may do what on a registry (domain; no grpc).

Registry roles: an explicit registry membership, else admin for org admins,
else viewer for org members when the registry's visibility is ``org``; a
superuser is admin everywhere. Reading a linked version needs a registry
role only, not one on the team that logged it — that is what publishing
into a registry is for.

Apart from registries.py because resolving a link name (resolver.py) needs
these checks and registries.py needs the resolver: both depend on this
module, and it on neither.
"""

from __future__ import annotations

import asyncpg

from depot.services.common.errors import NotFound, PermissionDenied

from .access import READ, Access, Principal, Role, parse_role
from .db import Database
from .idempotency import granted

# A registry with the caller's ($2) registry membership and org membership.
REGISTRY_SELECT = """
    SELECT r.*, o.name AS org_name,
           (SELECT role FROM registry_members rm
             WHERE rm.registry_id = r.id AND rm.user_id = $2) AS registry_role,
           (SELECT role FROM memberships m WHERE m.entity_id = o.id AND m.user_id = $2) AS org_role
    FROM registries r JOIN entities o ON o.id = r.org_id
"""
_REGISTRY_BY_NAME = REGISTRY_SELECT + " WHERE o.name = $1 AND r.name = $3"
_REGISTRY_BY_ID = REGISTRY_SELECT + " WHERE r.id = $1"
# Registries linking a live version of entity $1 whose manifest is $3.
_REGISTRIES_LINKING_MANIFEST = (
    REGISTRY_SELECT
    + """
    WHERE r.id IN (
        SELECT rc.registry_id FROM links l
        JOIN registry_collections rc ON rc.id = l.collection_id
        JOIN versions v ON v.id = l.version_id
        JOIN collections c ON c.id = v.collection_id
        JOIN projects p ON p.id = c.project_id
        JOIN entities e ON e.id = p.entity_id
        WHERE e.name = $1 AND v.manifest_id = $3 AND v.state = 'committed')
"""
)
_COLLECTION_EXISTS = "SELECT 1 FROM registry_collections WHERE registry_id = $1 AND name = $2"

_VERB = {Role.VIEWER: "read", Role.MEMBER: "link into", Role.ADMIN: "administer"}


def effective_role(who: Principal, row: asyncpg.Record) -> Role | None:
    """The caller's role on a ``REGISTRY_SELECT`` row's registry."""
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


class RegistryAccess:
    def __init__(self, db: Database, access: Access):
        self._db = db
        self._access = access

    async def require(self, who: Principal, org: str, registry: str, need: Role, field: str) -> asyncpg.Record:
        """The registry's ``REGISTRY_SELECT`` row if ``who`` holds at least ``need`` there."""
        row = await self._db.fetchrow(_REGISTRY_BY_NAME, org, who.user_id, registry)
        if row is None:
            # Say "not found" only to those who may read the org.
            await self._access.check(who, org, READ)
            raise NotFound(f"no registry {registry!r} in {org!r}", field=field)
        role = effective_role(who, row)
        if role is None or role < need:
            raise PermissionDenied(f"{who.user} may not {_VERB[need]} registry {org}/{registry}", field=field)
        granted("registry", row["id"], need)  # re-checked before an idempotent replay
        return row

    async def collection_must_exist(self, registry_id: int, name: str, coll: str) -> None:
        """NOT_FOUND for a registry collection nothing was ever linked into
        (asked only when a first page is empty: an empty listing would hide a typo)."""
        if not await self._db.fetchval(_COLLECTION_EXISTS, registry_id, coll):
            raise NotFound(f"registry collection {name} not found", field="parent")

    async def role(self, who: Principal, registry_id: int) -> Role | None:
        """The caller's current role on a registry (by id), for idempotent replays."""
        row = await self._db.fetchrow(_REGISTRY_BY_ID, registry_id, who.user_id)
        return effective_role(who, row) if row is not None else None

    async def may_read_manifest(self, who: Principal, entity: str, manifest_id: str) -> bool:
        """Whether ``who`` reads a registry that links a live version of ``entity`` with this manifest.

        Registry readers need no role on the team that logged a version to
        download it; this is what the manifest service asks for them.
        """
        if not manifest_id:
            return False
        rows = await self._db.fetch(_REGISTRIES_LINKING_MANIFEST, entity, who.user_id, manifest_id)
        return any(effective_role(who, row) is not None for row in rows)
