"""Who is calling and what they may do.

Roles per entity: admin > member > viewer. A user is admin of its own user
entity; a superuser (the bootstrap admin) may do anything and creates
entities on first use.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from enum import IntEnum

import asyncpg

from depot.services.common.credentials import ApiKey, new_api_key, parse_api_key
from depot.services.common.errors import NotFound, PermissionDenied, Unauthenticated


class Role(IntEnum):
    VIEWER = 1
    MEMBER = 2
    ADMIN = 3


# What each permission needs.
READ, WRITE, ADMIN = Role.VIEWER, Role.MEMBER, Role.ADMIN


@dataclass(frozen=True)
class Principal:
    user_id: int
    user: str
    superuser: bool


class Access:
    def __init__(self, pool: asyncpg.Pool):
        self._pool = pool

    async def authenticate(self, raw_key: str) -> Principal:
        key = parse_api_key(raw_key)
        row = await self._pool.fetchrow(
            """
            SELECT k.secret_sha256, e.id, e.name, e.superuser
            FROM api_keys k JOIN entities e ON e.id = k.user_id
            WHERE k.id = $1 AND k.revoke_time IS NULL
            """,
            key.key_id,
        )
        # Compare even when the row is missing so timing does not reveal key ids.
        stored = row["secret_sha256"] if row else b"\0" * 32
        if not hmac.compare_digest(stored, key.secret_sha256) or row is None:
            raise Unauthenticated("invalid or revoked API key")
        return Principal(row["id"], row["name"], row["superuser"])

    async def role(self, who: Principal, entity_id: int) -> Role | None:
        if who.superuser or who.user_id == entity_id:
            return Role.ADMIN
        r = await self._pool.fetchval(
            "SELECT role FROM memberships WHERE entity_id = $1 AND user_id = $2",
            entity_id,
            who.user_id,
        )
        return Role[r.upper()] if r else None

    async def require(self, who: Principal, entity: str, need: Role) -> int:
        """The entity's id if ``who`` holds at least ``need`` there.

        A missing entity and one the caller has no role in give the same
        PERMISSION_DENIED, so names of other teams do not leak. Superusers
        create missing entities (as teams) on first use.
        """
        entity_id = await self._pool.fetchval("SELECT id FROM entities WHERE name = $1", entity)
        if entity_id is None and who.superuser:
            entity_id = await self._pool.fetchval(
                """
                INSERT INTO entities (name, kind) VALUES ($1, 'team')
                ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name
                RETURNING id
                """,
                entity,
            )
        role = await self.role(who, entity_id) if entity_id is not None else None
        if role is None or role < need:
            raise PermissionDenied(
                f"{who.user} may not {_VERB[need]} entity {entity!r}", field="entity"
            )
        return int(entity_id)

    async def create_user(self, name: str, *, superuser: bool = False) -> int:
        uid = await self._pool.fetchval(
            "INSERT INTO entities (name, kind, superuser) VALUES ($1, 'user', $2) RETURNING id",
            name,
            superuser,
        )
        return int(uid)

    async def create_key(self, user_id: int, description: str = "") -> ApiKey:
        key = new_api_key()
        await self._pool.execute(
            "INSERT INTO api_keys (id, user_id, secret_sha256, description) VALUES ($1, $2, $3, $4)",
            key.key_id,
            user_id,
            key.secret_sha256,
            description,
        )
        return key

    async def bootstrap_admin(self, name: str = "admin") -> ApiKey | None:
        """Creates the superuser and its first key when no superuser exists yet."""
        if await self._pool.fetchval("SELECT 1 FROM entities WHERE superuser LIMIT 1"):
            return None
        uid = await self.create_user(name, superuser=True)
        return await self.create_key(uid, "bootstrap admin key")

    async def user_id(self, name: str) -> int:
        uid = await self._pool.fetchval("SELECT id FROM entities WHERE name = $1", name)
        if uid is None:
            raise NotFound(f"no user {name!r}")
        return int(uid)


_VERB = {Role.VIEWER: "read", Role.MEMBER: "write to", Role.ADMIN: "administer"}
