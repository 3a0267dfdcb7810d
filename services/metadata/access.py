"""Who is calling and what they may do.

Roles per entity: admin > member > viewer. A user is admin of its own user
entity; an admin of an org is admin of the teams that belong to it; a
superuser (the bootstrap admin) may do anything.

What each role may do:

    viewer   read versions, runs, lineage, members, settings
    member   + log and commit versions, runs, aliases, tags, TTLs (unless the
             team restricts TTLs to admins), link into registries it may write
    admin    + members and their roles, team settings

API keys are not a role on any entity: only the user itself and a superuser
create, list or revoke a user's keys (see accounts.py). Nobody below a
superuser acts on a superuser.

Nothing here creates an entity: entities, orgs and registries are made only
by their explicit create calls, never as a side effect of a check or a read.

One query answers "which entity, and what is my role there", so every RPC
pays one round trip for its access check.
"""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass
from enum import IntEnum

from depot.services.common.caching import ExpiringCache
from depot.services.common.credentials import ApiKey, new_api_key, parse_api_key
from depot.services.common.errors import (
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)

from .db import Database
from .idempotency import granted


class Role(IntEnum):
    VIEWER = 1
    MEMBER = 2
    ADMIN = 3


# What each permission needs.
READ, WRITE, ADMIN = Role.VIEWER, Role.MEMBER, Role.ADMIN


ROLE_NAMES = {Role.VIEWER: "viewer", Role.MEMBER: "member", Role.ADMIN: "admin"}


def parse_role(value: str, field: str = "role") -> Role:
    try:
        return Role[value.upper()]
    except KeyError:
        raise InvalidArgument(f"invalid role {value!r}: use admin, member or viewer", field=field) from None


@dataclass(frozen=True)
class Principal:
    user_id: int
    user: str
    superuser: bool


@dataclass(frozen=True)
class EntityAccess:
    id: int
    name: str
    kind: str
    role: Role | None
    # Who may set TTLs here: "members" or "admins".
    ttl_policy: str = "members"


# The caller's role on an entity: their membership, or admin through the
# entity's org. $1 entity id expression, $2 user id.
_ROLE_SQL = """
    (SELECT max(CASE r WHEN 'admin' THEN 3 WHEN 'member' THEN 2 ELSE 1 END) FROM (
        SELECT m.role AS r FROM memberships m WHERE m.entity_id = e.id AND m.user_id = $2
        UNION ALL
        SELECT 'admin' FROM memberships m
         WHERE m.entity_id = e.org_id AND m.user_id = $2 AND m.role = 'admin'
    ) x)
"""

# Successful authentications (and roles) are reused this long per process:
# one query less per RPC, and at hundreds of RPCs per second a key still
# misses only twice a second. Revoking a key drops it here at once; other
# replicas, worker processes and the gc service stop accepting it within this
# window. It is half of credentials.REVOKE_WITHIN_S because the manifest
# service caches CheckAccess answers (themselves up to this old) for the
# other half: a revoked key is refused everywhere within REVOKE_WITHIN_S.
AUTH_CACHE_S = 0.5
# Entries per cache. When full, the least recently used entry makes room
# (caching.py): a flood of distinct keys never flushes the hot ones.
AUTH_CACHE_MAX = 10_000


class Access:
    def __init__(self, db: Database):
        self._db = db
        self._auth_cache: ExpiringCache[str, Principal] = ExpiringCache("metadata.auth", AUTH_CACHE_MAX)
        self._role_cache: ExpiringCache[tuple[int, bool, str], EntityAccess] = ExpiringCache(
            "metadata.roles", AUTH_CACHE_MAX
        )

    def forget_key(self, key_id: str) -> None:
        """Drops a revoked key; again once the revocation commits, in case a
        concurrent call cached it in between."""

        def forget() -> None:
            self._auth_cache.discard_if(lambda raw: raw.startswith(f"dpt_{key_id}_"))

        forget()
        self._db.on_commit(forget)

    async def authenticate(self, raw_key: str) -> Principal:
        now = time.monotonic()
        hit = self._auth_cache.get(raw_key)
        if hit is not None:
            return hit
        who = await self._authenticate(raw_key)
        self._auth_cache.put(raw_key, who, now + AUTH_CACHE_S)
        return who

    async def _authenticate(self, raw_key: str) -> Principal:
        key = parse_api_key(raw_key)
        row = await self._db.fetchrow(
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
        r = await self._db.fetchval(f"SELECT {_ROLE_SQL} FROM entities e WHERE e.id = $1", entity_id, who.user_id)
        return Role(r) if r else None

    def forget_roles(self) -> None:
        """Drops cached roles; called after every membership or entity change
        here, and done again once that change commits (a concurrent call may
        have cached the old role in between)."""
        self._role_cache.clear()
        self._db.on_commit(self._role_cache.clear)

    async def lookup(self, who: Principal, entity: str) -> EntityAccess | None:
        """The entity and the caller's role there; None when it does not exist.

        Answers are cached for AUTH_CACHE_S like keys: a role change made
        through this process applies at once, one made through another
        replica within that window.
        """
        now = time.monotonic()
        ck = (who.user_id, who.superuser, entity)
        hit = self._role_cache.get(ck)
        if hit is not None:
            return hit
        found = await self._lookup(who, entity)
        if found is not None:
            # Only what is committed is cached: inside a transaction (say one
            # that creates the entity) the answer waits for its commit.
            self._db.on_commit(lambda: self._role_cache.put(ck, found, now + AUTH_CACHE_S))
        return found

    async def _lookup(self, who: Principal, entity: str) -> EntityAccess | None:
        row = await self._db.fetchrow(
            f"SELECT e.id, e.kind, e.ttl_policy, {_ROLE_SQL} AS role FROM entities e WHERE e.name = $1",
            entity,
            who.user_id,
        )
        if row is None:
            return None
        if who.superuser or row["id"] == who.user_id:
            role: Role | None = Role.ADMIN
        else:
            role = Role(row["role"]) if row["role"] else None
        return EntityAccess(row["id"], entity, row["kind"], role, row["ttl_policy"])

    async def check(self, who: Principal, entity: str, need: Role) -> EntityAccess:
        """The entity if ``who`` holds at least ``need`` there.

        For anyone but a superuser, a missing entity and one the caller has
        no role in give the same PERMISSION_DENIED, so names of other teams do
        not leak. A superuser may see every name anyway, so it gets NOT_FOUND
        naming the entity: a typo is reported, never created.
        """
        found = await self.lookup(who, entity)
        if found is None and who.superuser:
            raise NotFound(f"no entity {entity!r}", field="entity")
        if found is None or found.role is None or found.role < need:
            raise PermissionDenied(f"{who.user} may not {_VERB[need]} entity {entity!r}", field="entity")
        granted("entity", found.id, need)  # re-checked before an idempotent replay
        return found

    async def require(self, who: Principal, entity: str, need: Role) -> int:
        """The entity's id if ``who`` holds at least ``need`` there (see :meth:`check`)."""
        return (await self.check(who, entity, need)).id

    async def readable_entities(self, who: Principal) -> set[int] | None:
        """Ids of the entities ``who`` may read; None means all (superuser)."""
        if who.superuser:
            return None
        rows = await self._db.fetch(
            """
            SELECT entity_id FROM memberships WHERE user_id = $1
            UNION SELECT t.id FROM entities t JOIN memberships m ON m.entity_id = t.org_id
             WHERE m.user_id = $1 AND m.role = 'admin'
            """,
            who.user_id,
        )
        return {who.user_id, *(r[0] for r in rows)}

    @staticmethod
    def may_manage_keys(who: Principal, user_id: int) -> bool:
        """Whether ``who`` may create, list or revoke the user's API keys: only
        the user itself and a superuser.

        No role on any entity implies it: org admins once could, and since an
        admin can add any existing user to its org, that made every user's
        keys (the superuser's included) one SetMember away.
        """
        return who.superuser or who.user_id == user_id

    async def create_user(self, name: str, *, superuser: bool = False) -> int:
        uid = await self._db.fetchval(
            "INSERT INTO entities (name, kind, superuser) VALUES ($1, 'user', $2) RETURNING id",
            name,
            superuser,
        )
        return int(uid)

    async def create_key(self, user_id: int, description: str = "") -> ApiKey:
        # From the CSPRNG, never derived from anything a caller or a database
        # dump holds; only SHA-256 of the secret is stored.
        key = new_api_key()
        await self._db.execute(
            "INSERT INTO api_keys (id, user_id, secret_sha256, description) VALUES ($1, $2, $3, $4)",
            key.key_id,
            user_id,
            key.secret_sha256,
            description,
        )
        return key

    async def bootstrap_admin(self, name: str = "admin") -> ApiKey | None:
        """Creates the superuser and its first key when no superuser exists yet."""
        if await self._db.fetchval("SELECT 1 FROM entities WHERE superuser LIMIT 1"):
            return None
        uid = await self.create_user(name, superuser=True)
        return await self.create_key(uid, "bootstrap admin key")

    async def user_id(self, name: str) -> int:
        uid = await self._db.fetchval("SELECT id FROM entities WHERE name = $1", name)
        if uid is None:
            raise NotFound(f"no user {name!r}")
        return int(uid)


_VERB = {Role.VIEWER: "read", Role.MEMBER: "write to", Role.ADMIN: "administer"}
