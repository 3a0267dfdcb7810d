"""Deleting and undeleting artifact versions (domain; no grpc).

The one place a version is deleted by a user: DeleteArtifactVersion (one
version, :class:`Deletion`) and the bulk delete (DeleteArtifactVersions,
which calls :func:`delete_versions` inside its own transaction, batch by
batch). TTL expiry (housekeeping.py) is a delete by the system with the same
columns set.

A deleted version keeps its row (and its index) until ``purge_time`` =
delete time + the server's grace period; the GC removes it after that. Until
then it is gone from every read (every query there asks for
``state = 'committed'``) and :meth:`Deletion.undelete` restores it.

Rules (metadata.proto, "deletion"):

- a version linked into a registry is never deleted: unlink it first;
- a version holding aliases other than ``latest`` is deleted only with
  ``delete_aliases``; its aliases are saved (``deleted_aliases``) for
  undelete, then dropped;
- ``latest`` goes to the newest live version of each collection touched.

Concurrency: a delete locks the collections it touches, then the versions,
each set by id — the order commits take (collection, then its versions) —
so deletes, commits and other deletes never deadlock, and ``latest``
computed under the collection locks sees every commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from depot.services.common.errors import FailedPrecondition, InvalidArgument, NotFound

from . import names, records
from .access import READ, WRITE, Access, Principal
from .db import Connection, Database, one
from .fields import ttl_permission
from .records import Version
from .resolver import Resolver

# versions.delete_reason: deleted by a user (DeleteArtifactVersion[s]) or by TTL expiry.
DELETE_REASONS = ("user", "ttl")

# A write that points at a version (an alias, a registry link) takes this
# share lock on it first, in its transaction: a delete locks the row FOR
# UPDATE, so the two serialize, and the write sees the version deleted (no
# row) instead of pointing at it.
LIVE_VERSION_SHARE = "SELECT 1 FROM versions WHERE id = $1 AND state = 'committed' FOR SHARE"

_COLLECTIONS_OF = "SELECT DISTINCT collection_id FROM versions WHERE id = ANY($1::bigint[])"
_LOCK_COLLECTIONS = "SELECT id FROM collections WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE"
# The live versions among $1, locked; a version deleted (or purged) meanwhile
# drops out here, so deleting it twice changes nothing.
_LOCK_LIVE = """
    SELECT v.id, 'entities/' || e.name || '/projects/' || p.name || '/artifacts/' || c.name
           || '/versions/v' || v.index AS name
    FROM versions v
    JOIN collections c ON c.id = v.collection_id
    JOIN projects p ON p.id = c.project_id
    JOIN entities e ON e.id = p.entity_id
    WHERE v.id = ANY($1::bigint[]) AND v.state = 'committed'
    ORDER BY v.id
    FOR UPDATE OF v
"""
_CUSTOM_ALIASES = """
    SELECT version_id, array_agg(alias ORDER BY alias COLLATE "C") AS held FROM aliases
    WHERE version_id = ANY($1::bigint[]) AND alias <> 'latest'
    GROUP BY version_id
"""
_LINKS = """
    SELECT l.version_id,
           array_agg('entities/' || o.name || '/registries/' || rg.name || '/collections/' || rc.name
                     || '/versions/v' || l.index ORDER BY rg.name, rc.name, l.index) AS held
    FROM links l
    JOIN registry_collections rc ON rc.id = l.collection_id
    JOIN registries rg ON rg.id = rc.registry_id
    JOIN entities o ON o.id = rg.org_id
    WHERE l.version_id = ANY($1::bigint[])
    GROUP BY l.version_id
"""
# The aliases other than `latest` are kept for undelete (latest is
# recomputed, never restored as such).
_DELETE = """
    UPDATE versions x SET state = 'deleted', delete_time = now(), purge_time = now() + $2::interval,
        delete_reason = $3,
        deleted_aliases = coalesce((SELECT array_agg(a.alias ORDER BY a.alias COLLATE "C") FROM aliases a
                                     WHERE a.version_id = x.id AND a.alias <> 'latest'), '{}')
    WHERE x.id = ANY($1::bigint[])
"""
_DROP_ALIASES = "DELETE FROM aliases WHERE version_id = ANY($1::bigint[])"
# `latest` names the newest live version of each collection, or nothing
# when none is left.
LATEST_TO_NEWEST = """
    WITH newest AS (
        -- One backward step per collection on UNIQUE (collection_id, index):
        -- DISTINCT ON over the collection's rows sorted all of them, 0.6 s a
        -- call at 100,000 versions, once per batch of a bulk delete.
        SELECT c.id AS collection_id, n.id FROM unnest($1::bigint[]) AS c (id)
        CROSS JOIN LATERAL (SELECT v.id FROM versions v WHERE v.collection_id = c.id AND v.state = 'committed'
                            ORDER BY v.index DESC LIMIT 1) n
    ), gone AS (
        DELETE FROM aliases a WHERE a.collection_id = ANY($1::bigint[]) AND a.alias = 'latest'
          AND NOT EXISTS (SELECT 1 FROM newest n WHERE n.collection_id = a.collection_id)
    )
    INSERT INTO aliases (collection_id, alias, version_id)
    SELECT collection_id, 'latest', id FROM newest
    ON CONFLICT (collection_id, alias) DO UPDATE SET version_id = EXCLUDED.version_id
"""

# A version by index whether live or deleted (aliases name live versions
# only, so a deleted one is named by its index).
_BY_INDEX_ANY_STATE = records.VERSION_SELECT + " WHERE e.name = $1 AND p.name = $2 AND c.name = $3 AND v.index = $4"
_LOCK_VERSION = (
    "SELECT state, purge_time > now() AS in_grace, purge_time, delete_reason, deleted_aliases"
    " FROM versions WHERE id = $1 FOR UPDATE"
)
_RESTORE_ALIASES = """
    INSERT INTO aliases (collection_id, alias, version_id)
    SELECT $1, a, $2 FROM unnest($3::text[]) AS a
    ON CONFLICT (collection_id, alias) DO NOTHING
    RETURNING alias
"""
# An expired version comes back kept forever: with its TTL it would expire
# again at the next pass.
_UNDELETE = """
    UPDATE versions SET state = 'committed', delete_time = NULL, purge_time = NULL, delete_reason = NULL,
        deleted_aliases = '{}',
        ttl = CASE WHEN $2 THEN NULL ELSE ttl END,
        ttl_inherit = CASE WHEN $2 THEN false ELSE ttl_inherit END
    WHERE id = $1
"""


@dataclass(frozen=True)
class Target:
    """A version a delete acted on, or refused."""

    id: int
    # entities/E/projects/P/artifacts/C/versions/vN
    name: str
    # What refused it: its custom aliases, or its registry links' names.
    held: tuple[str, ...] = ()


@dataclass(frozen=True)
class DeleteOutcome:
    """What :func:`delete_versions` did, in version id order. Versions not
    live when it ran (already deleted, pending, gone) are in none of the lists."""

    deleted: tuple[Target, ...]
    # Holding aliases other than `latest`, without delete_aliases.
    skipped_aliased: tuple[Target, ...]
    # Linked into a registry (whatever their aliases).
    skipped_linked: tuple[Target, ...]


async def delete_versions(
    conn: Connection, version_ids: list[int], *, delete_reason: str, delete_aliases: bool, grace: timedelta
) -> DeleteOutcome:
    """Deletes the live versions among ``version_ids`` that the rules allow.

    Runs in the caller's transaction (``conn``), so a batch commits or rolls
    back with whatever else the caller records (its progress). Set-based: a
    fixed number of statements whatever the batch size.
    """
    if delete_reason not in DELETE_REASONS:
        raise ValueError(f"delete_reason must be one of {DELETE_REASONS}, not {delete_reason!r}")
    ids = sorted(set(version_ids))
    if not ids:
        return DeleteOutcome((), (), ())
    collections = [r["collection_id"] for r in await conn.fetch(_COLLECTIONS_OF, ids)]
    await conn.execute(_LOCK_COLLECTIONS, collections)
    live = await conn.fetch(_LOCK_LIVE, ids)
    live_ids = [r["id"] for r in live]
    aliases = {r["version_id"]: tuple(r["held"]) for r in await conn.fetch(_CUSTOM_ALIASES, live_ids)}
    links = {r["version_id"]: tuple(r["held"]) for r in await conn.fetch(_LINKS, live_ids)}
    deleted: list[Target] = []
    skipped_aliased: list[Target] = []
    skipped_linked: list[Target] = []
    for r in live:
        vid, name = r["id"], r["name"]
        if vid in links:
            skipped_linked.append(Target(vid, name, links[vid]))
        elif vid in aliases and not delete_aliases:
            skipped_aliased.append(Target(vid, name, aliases[vid]))
        else:
            deleted.append(Target(vid, name, aliases.get(vid, ())))
    gone = [t.id for t in deleted]
    if gone:
        await conn.execute(_DELETE, gone, grace, delete_reason)
        await conn.execute(_DROP_ALIASES, gone)
        await conn.execute(LATEST_TO_NEWEST, collections)
    return DeleteOutcome(tuple(deleted), tuple(skipped_aliased), tuple(skipped_linked))


@dataclass(frozen=True)
class _Found:
    """Ids of the version a delete or undelete acts on."""

    id: int
    collection_id: int


@dataclass(frozen=True)
class Undeleted:
    version: Version
    restored_aliases: tuple[str, ...]
    # Held when deleted, taken by another version meanwhile (they stay there).
    lost_aliases: tuple[str, ...]


class Deletion:
    """DeleteArtifactVersion and UndeleteArtifactVersion."""

    def __init__(self, db: Database, access: Access, resolver: Resolver, grace: timedelta):
        self._db = db
        self._access = access
        self._resolver = resolver
        self._grace = grace

    async def delete(self, who: Principal, name: str, delete_aliases: bool) -> Version:
        """Deletes the version ``name`` names (index, alias or registry link);
        a deleted version named by its index is answered as it is."""
        found = await self._find(who, name)
        async with self._db.transaction() as conn:
            out = await delete_versions(
                conn, [found.id], delete_reason="user", delete_aliases=delete_aliases, grace=self._grace
            )
            if out.skipped_linked:
                raise FailedPrecondition(
                    f"{name} is linked into a registry as {', '.join(out.skipped_linked[0].held)}; unlink it first",
                    field="name",
                )
            if out.skipped_aliased:
                raise FailedPrecondition(
                    f"{name} holds the aliases {', '.join(out.skipped_aliased[0].held)}; "
                    "delete with delete_aliases=true to drop them",
                    field="delete_aliases",
                )
            return records.version(one(await conn.fetchrow(records.VERSION_BY_ID, found.id)))

    async def _find(self, who: Principal, name: str) -> _Found:
        """The version to delete, live or (by index) deleted, once ``who`` may write its entity."""
        index = None if names.is_link_name(name) else names.version_index(names.parse_version(name).ref)
        if index is None:
            # An alias or a registry link: live versions only.
            found = await self._resolver.resolve(who, name, "name", READ)
            await self._access.check(who, found.entity, WRITE)
            return _Found(found.id, found.collection_id)
        await self._access.check(who, names.parse_version(name).collection.project.entity, WRITE)
        return await self._by_index(name, index)

    async def _by_index(self, name: str, index: int) -> _Found:
        vn = names.parse_version(name)
        proj = vn.collection.project
        row = await self._db.fetchrow(_BY_INDEX_ANY_STATE, proj.entity, proj.project, vn.collection.artifact, index)
        if row is None:
            raise NotFound(f"artifact version {name} not found (a purged version is gone for good)", field="name")
        return _Found(row["id"], row["collection_id"])

    async def undelete(self, who: Principal, name: str) -> Undeleted:
        """Restores a deleted version within its grace period, with the
        aliases it held that nobody took meanwhile; a live one is answered as it is."""
        if names.is_link_name(name):
            raise InvalidArgument(
                "name a deleted version by its artifact name and index (.../artifacts/A/versions/vN); "
                "registry links never name deleted versions",
                field="name",
            )
        vn = names.parse_version(name)
        index = names.version_index(vn.ref)
        if index is None:
            raise InvalidArgument(
                f"name a deleted version by its index (vN), not by the alias {vn.ref!r}: "
                "a deleted version holds no alias",
                field="name",
            )
        entity = await self._access.check(who, vn.collection.project.entity, WRITE)
        found = await self._by_index(name, index)
        async with self._db.transaction() as conn:
            await conn.execute(_LOCK_COLLECTIONS, [found.collection_id])
            row = await conn.fetchrow(_LOCK_VERSION, found.id)
            if row is None:
                raise NotFound(f"artifact version {name} was purged; it cannot be restored", field="name")
            restored: list[str] = []
            lost: list[str] = []
            if row["state"] == "deleted":
                if not row["in_grace"]:
                    raise FailedPrecondition(
                        f"{name} passed its purge time ({row['purge_time'].isoformat()}); "
                        "it is being purged and cannot be restored",
                        field="name",
                    )
                expired = row["delete_reason"] == "ttl"
                if expired:
                    # Keeping it forever is choosing a TTL.
                    ttl_permission(entity)
                await conn.execute(_UNDELETE, found.id, expired)
                held = list(row["deleted_aliases"])
                restored = [r["alias"] for r in await conn.fetch(_RESTORE_ALIASES, found.collection_id, found.id, held)]
                lost = [a for a in held if a not in set(restored)]
                await conn.execute(LATEST_TO_NEWEST, [found.collection_id])
            version = records.version(one(await conn.fetchrow(records.VERSION_BY_ID, found.id)))
        return Undeleted(version, tuple(sorted(restored)), tuple(sorted(lost)))
