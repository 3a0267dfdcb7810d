"""Artifact versions: create, commit, read, update (domain; no grpc).

A version is committed by one routine (:meth:`Versions._commit`, one SQL
statement after the collection lock), whichever call commits it:
CreateArtifactVersion given its manifest makes the version committed at
once, CommitArtifactVersion commits a version created pending. Either way,
unless a live version of the collection holds the same content, the
version takes the collection's next index and ``latest`` and its aliases
move to it; if one does, that version is returned and only the new
aliases move to it.

Concurrency: committing locks the collection row, so version indexes are
assigned one at a time per collection (gap-free, no retries needed) while
commits to different collections run in parallel.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg

from depot.services.common.errors import ErrorReason, FailedPrecondition, InvalidArgument, NotFound

from . import names, records
from .access import READ, WRITE, Access, Principal
from .db import Connection, Database, one
from .fields import (
    check_aliases,
    check_description,
    check_metadata,
    check_tags,
    check_ttl_mode,
    ttl_permission,
)
from .projects import Projects, get_or_create
from .records import ManifestInfo, Version
from .resolver import Resolver
from .runs import Runs

# Get-or-create without writing when the row exists (see projects.py).
_COLLECTION_GET_OR_CREATE = """
    WITH found AS (SELECT id, type FROM collections WHERE project_id = $1 AND name = $2),
         made AS (INSERT INTO collections (project_id, name, type)
                  SELECT $1, $2, $3 WHERE NOT EXISTS (SELECT 1 FROM found)
                  ON CONFLICT (project_id, name) DO NOTHING RETURNING id, type)
    SELECT id, type FROM found UNION ALL SELECT id, type FROM made
"""
# The same, holding the collection's row lock until the transaction ends:
# commits of one collection serialize on it (gap-free indexes, digest dedup).
_COLLECTION_GET_OR_CREATE_LOCKED = """
    WITH found AS (SELECT id, type FROM collections WHERE project_id = $1 AND name = $2 FOR UPDATE),
         made AS (INSERT INTO collections (project_id, name, type)
                  SELECT $1, $2, $3 WHERE NOT EXISTS (SELECT 1 FROM found)
                  ON CONFLICT (project_id, name) DO NOTHING RETURNING id, type)
    SELECT id, type FROM found UNION ALL SELECT id, type FROM made
"""
_COLLECTION_LOCK = "SELECT 1 FROM collections WHERE id = $1 FOR UPDATE"

_PENDING_INSERT = """
    INSERT INTO versions (uid, collection_id, description, metadata, producer_run_id, ttl, ttl_inherit, tags)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
"""
# A version to commit by uid, with its entity for the access check.
_VERSION_TO_COMMIT = """
    SELECT v.id, v.collection_id, e.name AS entity
    FROM versions v JOIN collections c ON c.id = v.collection_id
    JOIN projects p ON p.id = c.project_id JOIN entities e ON e.id = p.entity_id
    WHERE v.uid = $1
"""

# Commits a version in one statement, run after the collection lock so that
# it sees every earlier commit of the collection. $1 is the pending version
# to commit, or NULL to insert a new committed version from $3..$9 (uid,
# description, metadata, producer run, ttl, ttl_inherit, tags).
#
# Unless a live version holds the same content, it takes the next index,
# commits, and points `latest` and the aliases ($16) at the version; if one
# does, a pending version is deleted and only the new aliases ($15) move to
# that one. "The same content" is the same digest ($10) and the same stored
# manifest ($12). The W&B digest alone is ambiguous ("pp:s3" + "//b/k" and
# "pp" + "s3://b/k" both hash the line "pp:s3://b/k": a path may hold ':'
# and a reference's digest may be a URI), so a forged manifest committed
# first would swallow a later honest one. The manifest id is the SHA-256 of
# the manifest's bytes, which encode every entry field length-prefixed, and
# the writer is deterministic (entries in path order, fixed blocks, one zlib
# level; native and twin byte-identical): the same entries give the same id,
# different entries a different one. The digest stays in the condition for
# the versions_digest index.
#
# A pending version no longer pending changes nothing: a retried commit
# finds it committed, and one deduplicated by an earlier attempt finds it
# gone (pending_state NULL).
#
# Returns one row: the pending version's state before, the existing
# version's id (deduplicated), else the committed version's columns and its
# entity's ($17) default TTL.
_COMMIT = """
    WITH pending AS (
        SELECT state FROM versions WHERE id = $1
    ), existing AS (
        SELECT id FROM versions
        WHERE collection_id = $2 AND state = 'committed' AND digest = $10 AND manifest_id = $12
        ORDER BY index DESC LIMIT 1
    ), committing AS (
        SELECT 1 WHERE $1::bigint IS NULL OR (SELECT state FROM pending) = 'pending'
    ), idx AS (
        UPDATE collections SET next_index = next_index + 1
        WHERE id = $2 AND EXISTS (SELECT 1 FROM committing) AND NOT EXISTS (SELECT 1 FROM existing)
        RETURNING next_index - 1 AS n
    ), made AS (
        INSERT INTO versions
            (uid, collection_id, description, metadata, producer_run_id, ttl, ttl_inherit, tags,
             state, index, digest, digest_algorithm, manifest_id, size, file_count, commit_time)
        SELECT $3::uuid, $2, $4::text, $5::jsonb, $6::bigint, $7::interval, $8::boolean, $9::text[],
               'committed', n, $10, $11, $12, $13, $14, clock_timestamp()
        FROM idx WHERE $1::bigint IS NULL
        RETURNING *
    ), committed AS (
        UPDATE versions SET state = 'committed', index = idx.n, digest = $10, digest_algorithm = $11,
            manifest_id = $12, size = $13, file_count = $14, commit_time = clock_timestamp()
        FROM idx WHERE versions.id = $1
        RETURNING versions.*
    ), superseded AS (
        DELETE FROM versions
        WHERE id = $1 AND EXISTS (SELECT 1 FROM committing) AND EXISTS (SELECT 1 FROM existing)
    ), target AS (
        SELECT id, false AS deduplicated FROM made
        UNION ALL SELECT id, false FROM committed
        UNION ALL SELECT id, true FROM existing WHERE EXISTS (SELECT 1 FROM committing)
    ), aliased AS (
        INSERT INTO aliases (collection_id, alias, version_id)
        SELECT $2, a, t.id
        FROM target t, unnest(CASE WHEN t.deduplicated THEN $15::text[] ELSE $16::text[] END) AS a
        ON CONFLICT (collection_id, alias) DO UPDATE SET version_id = EXCLUDED.version_id
    )
    SELECT (SELECT state FROM pending) AS pending_state, (SELECT id FROM existing) AS existing_id, v.*,
           (SELECT default_ttl FROM entities WHERE id = $17) AS entity_default_ttl
    FROM (SELECT 1) AS one
    LEFT JOIN (SELECT * FROM made UNION ALL SELECT * FROM committed) AS v ON true
"""

_VERSION_UPDATE = """
    UPDATE versions SET
        description = CASE WHEN $2 THEN $3 ELSE description END,
        metadata = CASE WHEN $4 THEN $5::jsonb ELSE metadata END,
        tags = CASE WHEN $6 THEN $7::text[] ELSE tags END,
        ttl = CASE WHEN $8 THEN $9::interval ELSE ttl END,
        ttl_inherit = CASE WHEN $8 THEN $10 ELSE ttl_inherit END
    WHERE id = $1
"""
_UPDATABLE = ("description", "metadata_json", "tags", "ttl")


@dataclass(frozen=True)
class _NewVersion:
    """What a new version row gets from its create request."""

    uid: uuid.UUID
    description: str
    metadata: dict[str, Any]
    producer_run_id: int | None
    ttl: timedelta | None
    ttl_inherit: bool
    tags: list[str]

    def columns(self) -> tuple[Any, ...]:
        """uid, then description .. tags: the order the INSERTs list them in (collection_id aside)."""
        return (
            self.uid,
            self.description,
            self.metadata,
            self.producer_run_id,
            self.ttl,
            self.ttl_inherit,
            self.tags,
        )


_NO_NEW_VERSION = (None,) * 7


class Versions:
    def __init__(self, db: Database, access: Access, projects: Projects, runs: Runs, resolver: Resolver):
        self._db = db
        self._access = access
        self._projects = projects
        self._runs = runs
        self._resolver = resolver

    async def create_version(
        self,
        who: Principal,
        parent: str,
        artifact: str,
        type_: str,
        description: str,
        metadata_json: str,
        run: str,
        ttl: timedelta | None,
        ttl_mode: str = "",
        tags: list[str] | None = None,
        manifest: ManifestInfo | None = None,
        aliases: list[str] | None = None,
    ) -> Version:
        """A pending version; or, given its manifest, a committed one (one
        transaction, the same commit as ``commit_version``)."""
        project = names.parse_project(parent)
        names.check_part(artifact, "artifact", "artifact name")
        names.check_part(type_, "type", "artifact type")
        check_description(description)
        metadata = check_metadata(metadata_json)
        inherit, ttl = check_ttl_mode(ttl_mode, ttl)
        tag_list = check_tags(tags or [])
        aliases = aliases or []
        if aliases and manifest is None:
            raise InvalidArgument("aliases are set when committing; this version has no manifest", field="aliases")
        check_aliases(aliases)
        if manifest is not None and manifest.entity != project.entity:
            raise InvalidArgument("the manifest belongs to another entity", field="manifest.entity")
        # Every check comes before anything is created: the project of a first
        # log is made below, in the version's transaction, so a refusal (here,
        # or a type mismatch there) leaves nothing behind.
        found = await self._access.check(who, project.entity, WRITE)
        if not inherit:
            # Choosing a TTL (or "forever") instead of the team default.
            ttl_permission(found)
        run_id, producer_run = None, ""
        if run:
            run_row = await self._runs.row(who, run, WRITE, "run")
            # By name: the project may not exist yet (names are unique per entity).
            if (run_row["entity_name"], run_row["project_name"]) != (project.entity, project.project):
                raise InvalidArgument("the run belongs to another project", field="run")
            run_id, producer_run = run_row["id"], records.run(run_row).name
        new = _NewVersion(uuid.uuid4(), description, metadata, run_id, ttl, inherit, tag_list)
        async with self._db.transaction() as conn:
            pid = await self._projects.made(found, project)
            # Committing locks the collection row: see _COMMIT.
            sql = _COLLECTION_GET_OR_CREATE if manifest is None else _COLLECTION_GET_OR_CREATE_LOCKED
            coll = await get_or_create(conn, sql, pid, artifact, type_)
            if coll["type"] != type_:
                raise FailedPrecondition(
                    f"artifact {project}/artifacts/{artifact} has type {coll['type']!r}; "
                    f"it cannot be logged as {type_!r}",
                    field="type",
                    reason=ErrorReason.TYPE_MISMATCH,
                )
            if manifest is None:
                uid, *rest = new.columns()
                await conn.execute(_PENDING_INSERT, uid, coll["id"], *rest)
                return await self._by_uid(conn, str(new.uid))
            got = await self._commit(conn, coll["id"], manifest, aliases, new=new, entity_id=found.id)
            if got["existing_id"] is not None:  # deduplicated
                return await self._by_id(conn, got["existing_id"])
            # A new version: what VERSION_SELECT would join in is known here,
            # so no second query reads it back.
            joined = {
                "entity_name": project.entity,
                "project_name": project.project,
                "collection_name": artifact,
                "type": type_,
                "producer_run": producer_run,
                "aliases": sorted({"latest", *aliases}),
                "linked": False,
            }
            return records.version({**dict(got), **joined})

    async def commit_version(self, who: Principal, uid: str, manifest: ManifestInfo, aliases: list[str]) -> Version:
        try:
            parsed = uuid.UUID(uid)
        except ValueError:
            raise InvalidArgument(f"invalid version uid {uid!r}", field="uid") from None
        check_aliases(aliases)
        # Access is checked before taking a connection for the transaction:
        # holding one while asking the pool for another can exhaust the pool.
        row = await self._db.fetchrow(_VERSION_TO_COMMIT, parsed)
        if row is None:
            raise NotFound(f"pending version {uid} not found", field="uid")
        await self._access.require(who, row["entity"], WRITE)
        if manifest.entity != row["entity"]:
            raise InvalidArgument("the manifest belongs to another entity", field="manifest.entity")
        async with self._db.transaction() as conn:
            # Serializes commits of this collection; _COMMIT, a new statement,
            # sees every commit that finished while this one waited.
            await conn.execute(_COLLECTION_LOCK, row["collection_id"])
            got = await self._commit(conn, row["collection_id"], manifest, aliases, pending_id=row["id"])
            if got["pending_state"] is None:
                # Deduplicated by an earlier attempt: the pending row is gone.
                raise NotFound(
                    f"pending version {uid} was already committed as an existing version",
                    field="uid",
                )
            if got["pending_state"] != "pending":
                # A retried commit of a version that already went through.
                return await self._by_uid(conn, uid)
            return await self._by_id(conn, got["existing_id"] or row["id"])

    async def _commit(
        self,
        conn: Connection,
        collection_id: int,
        manifest: ManifestInfo,
        aliases: list[str],
        *,
        pending_id: int | None = None,
        new: _NewVersion | None = None,
        entity_id: int | None = None,
    ) -> asyncpg.Record:
        """The one commit routine (see _COMMIT); the caller holds the collection lock."""
        got = await conn.fetchrow(
            _COMMIT,
            pending_id,
            collection_id,
            *(new.columns() if new is not None else _NO_NEW_VERSION),
            manifest.digest,
            manifest.digest_algorithm,
            manifest.manifest_id,
            manifest.size,
            manifest.file_count,
            sorted(set(aliases)),
            sorted({"latest", *aliases}),
            entity_id,
        )
        return one(got)

    @staticmethod
    async def _by_id(conn: Connection, version_id: int) -> Version:
        # Read in the transaction that committed or found it (committed
        # versions are never deleted as rows).
        return records.version(one(await conn.fetchrow(records.VERSION_BY_ID, version_id)))

    @staticmethod
    async def _by_uid(conn: Connection, uid: str) -> Version:
        row = await conn.fetchrow(records.VERSION_BY_UID, uid)
        if row is None:
            raise NotFound(f"version {uid} not found", field="uid")
        return records.version(row)

    async def get_version(self, who: Principal, name: str) -> Version:
        return (await self._resolver.resolve(who, name, "name")).version

    async def update_version(
        self,
        who: Principal,
        name: str,
        paths: list[str],
        *,
        description: str = "",
        metadata_json: str = "",
        tags: list[str] | None = None,
        ttl_mode: str = "",
        ttl: timedelta | None = None,
    ) -> Version:
        if not paths:
            raise InvalidArgument("update_mask names no field", field="update_mask")
        for p in paths:
            if p not in _UPDATABLE:
                raise InvalidArgument(f"cannot update {p!r}: use {', '.join(_UPDATABLE)}", field="update_mask")
        check_description(description)
        metadata = check_metadata(metadata_json)
        tag_list = check_tags(tags or [])
        inherit, own_ttl = check_ttl_mode(ttl_mode, ttl) if "ttl" in paths else (False, None)
        # Through a registry link too, changing a version needs write access to
        # the entity that logged it.
        found = await self._resolver.resolve(who, name, "version.name", READ)
        entity = await self._access.check(who, found.entity, WRITE)
        if "ttl" in paths:
            ttl_permission(entity)
        await self._db.execute(
            _VERSION_UPDATE,
            found.id,
            "description" in paths,
            description,
            "metadata_json" in paths,
            metadata,
            "tags" in paths,
            tag_list,
            "ttl" in paths,
            own_ttl,
            inherit,
        )
        async with self._db.connection() as conn:
            return await self._by_id(conn, found.id)
