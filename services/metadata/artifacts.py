"""Artifact collections, versions, aliases, runs and lineage (domain; no grpc).

Concurrency: committing locks the collection row, so version indexes are
assigned one at a time per collection (gap-free, no retries needed) while
commits to different collections run in parallel.
"""

from __future__ import annotations

import json
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from depot.services.common import validate
from depot.services.common.errors import (
    Aborted,
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)

from . import names
from .access import ADMIN, READ, WRITE, Access, EntityAccess, Principal
from .accounts import check_ttl
from .db import Database
from .pages import PageTokens, page_size

MAX_METADATA_BYTES = 64 * 1024
MAX_DESCRIPTION = 4096
_RUN_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


@dataclass(frozen=True)
class ManifestInfo:
    entity: str
    manifest_id: str
    digest: str
    digest_algorithm: str
    size: int
    file_count: int


@dataclass
class Version:
    collection: str
    uid: str
    type: str
    index: int | None
    state: str
    digest: str
    digest_algorithm: str
    size: int
    file_count: int
    manifest_id: str
    description: str
    metadata: dict[str, Any]
    create_time: datetime
    commit_time: datetime | None
    producer_run: str
    # The version's own TTL (None with ttl_inherit, or forever).
    ttl: timedelta | None
    aliases: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    ttl_inherit: bool = False
    # What applies now: the own TTL, or the entity's default when inheriting.
    effective_ttl: timedelta | None = None
    linked: bool = False
    # Set when the version was reached through a registry link.
    link: LinkRef | None = None

    @property
    def name(self) -> str:
        ref = f"v{self.index}" if self.index is not None else self.uid
        return f"{self.collection}/versions/{ref}"

    @property
    def ttl_mode(self) -> str:
        if self.ttl_inherit:
            return "inherit"
        return "forever" if self.ttl is None else "duration"

    @property
    def expire_time(self) -> datetime | None:
        if self.linked or self.effective_ttl is None or self.commit_time is None:
            return None
        # Clamped: a TTL stored before TTLs were bounded (or written by hand)
        # must not make the version unreadable for everyone.
        return validate.add_clamped(self.commit_time, self.effective_ttl)


@dataclass
class LinkRef:
    collection: str
    index: int
    aliases: list[str]
    create_time: datetime

    @property
    def name(self) -> str:
        return f"{self.collection}/versions/v{self.index}"


@dataclass(frozen=True)
class VersionFilter:
    alias: str = ""
    tag: str = ""
    created_after: datetime | None = None
    created_before: datetime | None = None
    metadata_key: str = ""
    metadata_value_json: str = ""

    def __post_init__(self) -> None:
        if self.alias:
            names.check_part(self.alias, "alias", "alias")
        if self.tag:
            names.check_part(self.tag, "tag", "tag")
        if bool(self.metadata_key) != bool(self.metadata_value_json):
            raise InvalidArgument("metadata_key and metadata_value_json go together", field="metadata_key")
        if self.metadata_key:
            validate.check_text(self.metadata_key, "metadata_key", MAX_DESCRIPTION)
        if self.metadata_value_json:
            validate.parse_json(self.metadata_value_json, "metadata_value_json", max_bytes=MAX_METADATA_BYTES)

    def metadata_match(self) -> dict[str, Any] | None:
        if not self.metadata_key:
            return None
        return {self.metadata_key: json.loads(self.metadata_value_json)}

    def scope(self) -> str:
        return json.dumps(
            [
                self.alias,
                self.tag,
                str(self.created_after),
                str(self.created_before),
                self.metadata_key,
                self.metadata_value_json,
            ]
        )


@dataclass
class Run:
    name: str
    job_type: str
    state: str
    config: dict[str, Any]
    create_time: datetime
    finish_time: datetime | None


_VERSION_SELECT = """
    SELECT v.*, c.name AS collection_name, c.type, p.name AS project_name,
           e.name AS entity_name,
           (SELECT 'entities/' || pe.name || '/projects/' || pp.name || '/runs/' || r.name
              FROM runs r JOIN projects pp ON pp.id = r.project_id
              JOIN entities pe ON pe.id = pp.entity_id
             WHERE r.id = v.producer_run_id) AS producer_run,
           COALESCE((SELECT array_agg(a.alias ORDER BY a.alias COLLATE "C") FROM aliases a
                      WHERE a.version_id = v.id), '{}') AS aliases,
           e.default_ttl AS entity_default_ttl,
           EXISTS (SELECT 1 FROM links l WHERE l.version_id = v.id) AS linked
    FROM versions v
    JOIN collections c ON c.id = v.collection_id
    JOIN projects p ON p.id = c.project_id
    JOIN entities e ON e.id = p.entity_id
"""


# The version an alias names, found first (uncorrelated, see _VERSION_BY_ALIAS).
_ALIASED_VERSION_ID = """v.id = (
        SELECT a.version_id FROM aliases a
        JOIN collections ac ON ac.id = a.collection_id
        JOIN projects ap ON ap.id = ac.project_id
        JOIN entities ae ON ae.id = ap.entity_id
        WHERE ae.name = $1 AND ap.name = $2 AND ac.name = $3 AND a.alias = {alias})"""


_VERSION_BY_INDEX = (
    _VERSION_SELECT + " WHERE e.name = $1 AND p.name = $2 AND c.name = $3 AND v.state = 'committed' AND v.index = $4"
)
# The alias is looked up first, in an uncorrelated subquery (one index probe),
# then its version by id. Written as a filter correlated with the collection,
# the planner scanned every version of the collection once alias moves
# outran its statistics, so resolving got slower with every commit
# (bench/metadata.py: 1,474 -> 525 ops/s after 3,000 more commits).
_VERSION_BY_ALIAS = f"{_VERSION_SELECT} WHERE v.state = 'committed' AND {_ALIASED_VERSION_ID.format(alias='$4')}"


def _version(row: asyncpg.Record | dict[str, Any]) -> Version:
    return Version(
        collection=(f"entities/{row['entity_name']}/projects/{row['project_name']}/artifacts/{row['collection_name']}"),
        uid=str(row["uid"]),
        type=row["type"],
        index=row["index"],
        state=row["state"],
        digest=row["digest"] or "",
        digest_algorithm=row["digest_algorithm"] or "",
        size=row["size"],
        file_count=row["file_count"],
        manifest_id=row["manifest_id"] or "",
        description=row["description"],
        metadata=row["metadata"],
        create_time=row["create_time"],
        commit_time=row["commit_time"],
        producer_run=row["producer_run"] or "",
        ttl=row["ttl"],
        aliases=list(row["aliases"]),
        tags=list(row["tags"]),
        ttl_inherit=row["ttl_inherit"],
        effective_ttl=row["entity_default_ttl"] if row["ttl_inherit"] else row["ttl"],
        linked=row["linked"],
        link=row.get("_link"),
    )


def _run(row: asyncpg.Record) -> Run:
    return Run(
        name=f"entities/{row['entity_name']}/projects/{row['project_name']}/runs/{row['name']}",
        job_type=row["job_type"],
        state=row["state"],
        config=row["config"],
        create_time=row["create_time"],
        finish_time=row["finish_time"],
    )


_RUN_SELECT = """
    SELECT r.*, p.name AS project_name, e.name AS entity_name
    FROM runs r JOIN projects p ON p.id = r.project_id JOIN entities e ON e.id = p.entity_id
"""


def _check_description(description: str, field: str = "description") -> str:
    return validate.check_text(description, field, MAX_DESCRIPTION)


def _check_metadata(metadata_json: str, field: str = "metadata_json") -> dict[str, Any]:
    """A JSON object that jsonb and json.dumps can hold (validate.parse_json)."""
    if not metadata_json:
        return {}
    value: dict[str, Any] = validate.parse_json(metadata_json, field, max_bytes=MAX_METADATA_BYTES, object_only=True)
    return value


TTL_MODES = ("", "forever", "duration", "inherit")
MAX_TAGS = 64


def check_ttl_mode(mode: str, ttl: timedelta | None) -> tuple[bool, timedelta | None]:
    """(inherit, own ttl) for a requested mode; "" means duration when a ttl is
    given, else inherit the team default."""
    if mode not in TTL_MODES:
        raise InvalidArgument(f"invalid ttl mode {mode!r}", field="ttl_mode")
    if not mode:
        mode = "duration" if ttl is not None else "inherit"
    if mode == "duration":
        if ttl is None:
            raise InvalidArgument("ttl_mode DURATION needs a ttl", field="ttl")
        return False, check_ttl(ttl)
    if ttl is not None:
        raise InvalidArgument(f"ttl_mode {mode.upper()} takes no ttl", field="ttl")
    return mode == "inherit", None


def check_tags(tags: list[str], field: str = "tags") -> list[str]:
    if len(tags) > MAX_TAGS:
        raise InvalidArgument(f"at most {MAX_TAGS} tags per version", field=field)
    return sorted({names.check_part(t, field, "tag") for t in tags})


def _ttl_permission(found: EntityAccess) -> None:
    if found.ttl_policy == "admins" and (found.role or 0) < ADMIN:
        raise PermissionDenied(
            f"only admins of {found.name!r} may set TTLs (its ttl_policy is 'admins')",
            field="ttl",
            reason="TTL_ADMINS_ONLY",
        )


# Get-or-create without writing when the row exists: an upsert with
# "DO UPDATE" would rewrite (and row-lock) a hot project or collection row
# on every call, queueing creates behind commits that hold that lock.
_PROJECT_GET_OR_CREATE = """
    WITH found AS (SELECT id FROM projects WHERE entity_id = $1 AND name = $2),
         made AS (INSERT INTO projects (entity_id, name)
                  SELECT $1, $2 WHERE NOT EXISTS (SELECT 1 FROM found)
                  ON CONFLICT (entity_id, name) DO NOTHING RETURNING id)
    SELECT id FROM found UNION ALL SELECT id FROM made
"""
_COLLECTION_GET_OR_CREATE = """
    WITH found AS (SELECT id, type FROM collections WHERE project_id = $1 AND name = $2),
         made AS (INSERT INTO collections (project_id, name, type)
                  SELECT $1, $2, $3 WHERE NOT EXISTS (SELECT 1 FROM found)
                  ON CONFLICT (project_id, name) DO NOTHING RETURNING id, type)
    SELECT id, type FROM found UNION ALL SELECT id, type FROM made
"""


# The same, holding the collection's row lock until the transaction ends:
# commits of one collection serialize on it (gap-free indexes, digest dedup).
_COLLECTION_GET_OR_CREATE_LOCKED = _COLLECTION_GET_OR_CREATE.replace(
    "WHERE project_id = $1 AND name = $2)", "WHERE project_id = $1 AND name = $2 FOR UPDATE)"
)

# A live version of the collection holding the same content: the same
# digest and the same stored manifest. The W&B digest alone is ambiguous
# ("pp:s3" + "//b/k" and "pp" + "s3://b/k" both hash the line "pp:s3://b/k":
# a path may hold ':' and a reference's digest may be a URI), so a forged
# manifest committed first would swallow a later honest one. The manifest id
# is the SHA-256 of the manifest's bytes, which encode every entry field
# length-prefixed, and the writer is deterministic (entries in path order,
# fixed blocks, one zlib level; native and twin byte-identical): the same
# entries give the same id, different entries a different one. The digest
# stays in the condition for the versions_digest index.
_SAME_CONTENT = "collection_id = {coll} AND state = 'committed' AND digest = {digest} AND manifest_id = {manifest}"

# Creates a committed version in one statement, after the collection lock:
# unless a live version holds the same content ($9 digest, $11 manifest id),
# take the next index, insert the version and point `latest` and the new
# aliases at it; if one does, point only the new aliases at that one. Returns
# one row: the existing version's id (deduplicated), else the new version's
# columns and its entity's default TTL ($16: the entity id) — everything its
# reply needs, so no second query reads it back.
_CREATE_COMMITTED = f"""
    WITH existing AS (
        SELECT id FROM versions
        WHERE {_SAME_CONTENT.format(coll="$2", digest="$9", manifest="$11")}
        ORDER BY index DESC LIMIT 1
    ), idx AS (
        UPDATE collections SET next_index = next_index + 1
        WHERE id = $2 AND NOT EXISTS (SELECT 1 FROM existing)
        RETURNING next_index - 1 AS n
    ), made AS (
        INSERT INTO versions
            (uid, collection_id, description, metadata, producer_run_id, ttl, ttl_inherit, tags,
             state, index, digest, digest_algorithm, manifest_id, size, file_count, commit_time)
        SELECT $1, $2, $3, $4, $5, $6, $7, $8, 'committed', n, $9, $10, $11, $12, $13, clock_timestamp() FROM idx
        RETURNING *
    ), target AS (
        SELECT id, false AS deduplicated FROM made UNION ALL SELECT id, true FROM existing
    ), aliased AS (
        INSERT INTO aliases (collection_id, alias, version_id)
        SELECT $2, a, t.id
        FROM target t, unnest(CASE WHEN t.deduplicated THEN $14::text[] ELSE $15::text[] END) AS a
        ON CONFLICT (collection_id, alias) DO UPDATE SET version_id = EXCLUDED.version_id
    )
    SELECT (SELECT id FROM existing) AS existing_id, made.*,
           (SELECT default_ttl FROM entities WHERE id = $16) AS entity_default_ttl
    FROM (SELECT 1) AS one LEFT JOIN made ON true
"""

# The pending version's state ($1) and a live version of its collection ($2)
# with the same content ($3 digest, $4 manifest id), for commit_version.
_PENDING_STATE_AND_SAME_CONTENT = f"""
    SELECT (SELECT state FROM versions WHERE id = $1) AS state,
           (SELECT id FROM versions
             WHERE {_SAME_CONTENT.format(coll="$2", digest="$3", manifest="$4")}
             ORDER BY index DESC LIMIT 1) AS existing
"""

_PROJECT_CACHE = 100_000


async def _get_or_create(db: Any, sql: str, *args: Any, row: bool = False) -> Any:
    """Runs a found-or-made query; a lost insert race reads the winner's row."""
    for _ in range(3):
        got = await db.fetchrow(sql, *args)
        if got is not None:
            return got if row else got[0]
    raise Aborted("concurrent creation kept conflicting; retry")


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
        """description .. tags, in the order the INSERTs list them after collection_id."""
        return (self.description, self.metadata, self.producer_run_id, self.ttl, self.ttl_inherit, self.tags)


class Artifacts:
    def __init__(self, db: Database, access: Access, pages: PageTokens):
        self._db = db
        self._access = access
        self._pages = pages
        # Project ids by (entity id, name): projects are never renamed or
        # deleted, so a committed id stays right; one query less per commit.
        self._project_ids: dict[tuple[int, str], int] = {}
        # Resolves registry link names; set by the registries part.
        self.links: Any = None

    # -- projects and runs -------------------------------------------------

    async def _made_project(self, found: EntityAccess, project: names.ProjectName) -> int:
        """The project's id, created if missing (logging into a project makes
        it). Call it after every other check, inside the transaction of the
        work that needs it, so that a refused request leaves no project."""
        key = (found.id, project.project)
        if key in self._project_ids:
            return self._project_ids[key]
        pid = int(await _get_or_create(self._db, _PROJECT_GET_OR_CREATE, found.id, project.project))
        self._db.on_commit(lambda: self._remember_project(key, pid))
        return pid

    def _remember_project(self, key: tuple[int, str], pid: int) -> None:
        if len(self._project_ids) >= _PROJECT_CACHE:
            self._project_ids.clear()
        self._project_ids[key] = pid

    async def create_run(self, who: Principal, parent: str, run_id: str, job_type: str, config_json: str) -> Run:
        project = names.parse_project(parent)
        if run_id:
            names.check_part(run_id, "run_id", "run id")
        else:
            run_id = "".join(secrets.choice(_RUN_ALPHABET) for _ in range(8))
        if job_type:
            names.check_part(job_type, "run.job_type", "job type")
        config = _check_metadata(config_json, "run.config_json")
        found = await self._access.check(who, project.entity, WRITE)
        try:
            # One transaction: a run that cannot be made leaves no project.
            async with self._db.transaction():
                await self._db.execute(
                    "INSERT INTO runs (project_id, name, job_type, config) VALUES ($1, $2, $3, $4)",
                    await self._made_project(found, project),
                    run_id,
                    job_type,
                    config,
                )
        except asyncpg.UniqueViolationError:
            raise AlreadyExists(f"run {project}/runs/{run_id} already exists", field="run_id") from None
        return await self.get_run(who, f"{project}/runs/{run_id}")

    async def _run_row(self, who: Principal, name: str, need: Any, field: str) -> asyncpg.Record:
        rn = names.parse_run(name, field)
        await self._access.require(who, rn.project.entity, need)
        row = await self._db.fetchrow(
            _RUN_SELECT + " WHERE e.name = $1 AND p.name = $2 AND r.name = $3",
            rn.project.entity,
            rn.project.project,
            rn.run,
        )
        if row is None:
            raise NotFound(f"run {name} not found", field=field)
        return row

    async def get_run(self, who: Principal, name: str) -> Run:
        return _run(await self._run_row(who, name, READ, "name"))

    async def finish_run(self, who: Principal, name: str, state: str) -> Run:
        state = state or "finished"
        if state not in ("finished", "failed"):
            raise InvalidArgument("state must be 'finished' or 'failed'", field="state")
        row = await self._run_row(who, name, WRITE, "name")
        await self._db.execute(
            "UPDATE runs SET state = $2, finish_time = now() WHERE id = $1 AND state = 'running'",
            row["id"],
            state,
        )
        return await self.get_run(who, name)

    # -- versions ----------------------------------------------------------

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
        transaction, the same digest deduplication as ``commit_version``)."""
        project = names.parse_project(parent)
        names.check_part(artifact, "artifact", "artifact name")
        names.check_part(type_, "type", "artifact type")
        _check_description(description)
        metadata = _check_metadata(metadata_json)
        inherit, ttl = check_ttl_mode(ttl_mode, ttl)
        tag_list = check_tags(tags or [])
        aliases = aliases or []
        if aliases and manifest is None:
            raise InvalidArgument("aliases are set when committing; this version has no manifest", field="aliases")
        for a in aliases:
            names.check_settable_alias(a)
        if manifest is not None and manifest.entity != project.entity:
            raise InvalidArgument("the manifest belongs to another entity", field="manifest.entity")
        # Every check comes before anything is created: the project of a first
        # log is made below, in the version's transaction, so a refusal (here,
        # or a type mismatch there) leaves nothing behind.
        found = await self._access.check(who, project.entity, WRITE)
        if not inherit:
            # Choosing a TTL (or "forever") instead of the team default.
            _ttl_permission(found)
        run_id, producer_run = None, ""
        if run:
            run_row = await self._run_row(who, run, WRITE, "run")
            # By name: the project may not exist yet (names are unique per entity).
            if (run_row["entity_name"], run_row["project_name"]) != (project.entity, project.project):
                raise InvalidArgument("the run belongs to another project", field="run")
            run_id, producer_run = run_row["id"], _run(run_row).name
        row = _NewVersion(uuid.uuid4(), description, metadata, run_id, ttl, inherit, tag_list)
        async with self._db.transaction() as conn:
            pid = await self._made_project(found, project)
            # Committing locks the collection row: see _CREATE_COMMITTED.
            sql = _COLLECTION_GET_OR_CREATE if manifest is None else _COLLECTION_GET_OR_CREATE_LOCKED
            coll = await _get_or_create(conn, sql, pid, artifact, type_, row=True)
            if coll["type"] != type_:
                raise FailedPrecondition(
                    f"artifact {project}/artifacts/{artifact} has type {coll['type']!r}; "
                    f"it cannot be logged as {type_!r}",
                    field="type",
                    reason="TYPE_MISMATCH",
                )
            if manifest is None:
                await conn.execute(
                    """
                    INSERT INTO versions
                        (uid, collection_id, description, metadata, producer_run_id, ttl,
                         ttl_inherit, tags)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                    """,
                    row.uid,
                    coll["id"],
                    *row.columns(),
                )
                return await self._get_by_uid(str(row.uid), conn)
            got = await conn.fetchrow(
                _CREATE_COMMITTED,
                row.uid,
                coll["id"],
                *row.columns(),
                manifest.digest,
                manifest.digest_algorithm,
                manifest.manifest_id,
                manifest.size,
                manifest.file_count,
                sorted(set(aliases)),
                sorted({"latest", *aliases}),
                found.id,
            )
            if got["existing_id"] is not None:  # deduplicated
                return _version(await conn.fetchrow(_VERSION_SELECT + " WHERE v.id = $1", got["existing_id"]))
            # A new version: what _VERSION_SELECT would join in is known here.
            joined = {
                "entity_name": project.entity,
                "project_name": project.project,
                "collection_name": artifact,
                "type": type_,
                "producer_run": producer_run,
                "aliases": sorted({"latest", *aliases}),
                "linked": False,
            }
            return _version({**dict(got), **joined})

    async def _get_by_uid(self, uid: str, conn: Any = None) -> Version:
        row = await (conn or self._db).fetchrow(_VERSION_SELECT + " WHERE v.uid = $1", uid)
        if row is None:
            raise NotFound(f"version {uid} not found", field="uid")
        return _version(row)

    async def commit_version(self, who: Principal, uid: str, manifest: ManifestInfo, aliases: list[str]) -> Version:
        try:
            parsed = uuid.UUID(uid)
        except ValueError:
            raise InvalidArgument(f"invalid version uid {uid!r}", field="uid") from None
        for a in aliases:
            names.check_settable_alias(a)
        # Access is checked before taking a connection for the transaction:
        # holding one while asking the pool for another can exhaust the pool.
        row = await self._db.fetchrow(
            """
            SELECT v.id, v.collection_id, e.name AS entity
            FROM versions v JOIN collections c ON c.id = v.collection_id
            JOIN projects p ON p.id = c.project_id JOIN entities e ON e.id = p.entity_id
            WHERE v.uid = $1
            """,
            parsed,
        )
        if row is None:
            raise NotFound(f"pending version {uid} not found", field="uid")
        await self._access.require(who, row["entity"], WRITE)
        if manifest.entity != row["entity"]:
            raise InvalidArgument("the manifest belongs to another entity", field="manifest.entity")
        async with self._db.transaction() as conn:
            # Serializes commits of this collection: index assignment and the
            # digest check below see every earlier commit.
            await conn.execute("SELECT 1 FROM collections WHERE id = $1 FOR UPDATE", row["collection_id"])
            # Read after the lock, in a new statement, so both see every
            # commit that finished while this one waited.
            now = await conn.fetchrow(
                _PENDING_STATE_AND_SAME_CONTENT,
                row["id"],
                row["collection_id"],
                manifest.digest,
                manifest.manifest_id,
            )
            state = now["state"]
            if state is None:
                # Deduplicated by an earlier attempt: the pending row is gone.
                raise NotFound(
                    f"pending version {uid} was already committed as an existing version",
                    field="uid",
                )
            if state != "pending":
                # A retried commit of a version that already went through.
                return await self._get_by_uid(uid, conn)
            existing = now["existing"]
            if existing is not None:
                await conn.execute("DELETE FROM versions WHERE id = $1", row["id"])
                await self._set_aliases(conn, row["collection_id"], existing, aliases)
                result_id = existing
            else:
                # One statement: take the next index, commit the version, move
                # `latest` and the new aliases onto it.
                await conn.execute(
                    """
                    WITH idx AS (
                        UPDATE collections SET next_index = next_index + 1 WHERE id = $2
                        RETURNING next_index - 1 AS n
                    ), committed AS (
                        UPDATE versions SET state = 'committed', index = (SELECT n FROM idx),
                            digest = $3, digest_algorithm = $4, manifest_id = $5, size = $6,
                            file_count = $7, commit_time = clock_timestamp()
                        WHERE id = $1 RETURNING id
                    )
                    INSERT INTO aliases (collection_id, alias, version_id)
                    SELECT $2, a, (SELECT id FROM committed) FROM unnest($8::text[]) AS a
                    ON CONFLICT (collection_id, alias) DO UPDATE SET version_id = EXCLUDED.version_id
                    """,
                    row["id"],
                    row["collection_id"],
                    manifest.digest,
                    manifest.digest_algorithm,
                    manifest.manifest_id,
                    manifest.size,
                    manifest.file_count,
                    sorted({"latest", *aliases}),
                )
                result_id = row["id"]
            out = await conn.fetchrow(_VERSION_SELECT + " WHERE v.id = $1", result_id)
            return _version(out)

    @staticmethod
    async def _set_aliases(conn: asyncpg.Connection, collection_id: int, version_id: int, aliases: list[str]) -> None:
        # One statement: every alias moves to this version atomically.
        await conn.execute(
            """
            INSERT INTO aliases (collection_id, alias, version_id)
            SELECT $1, a, $2 FROM unnest($3::text[]) AS a
            ON CONFLICT (collection_id, alias) DO UPDATE SET version_id = EXCLUDED.version_id
            """,
            collection_id,
            version_id,
            sorted(set(aliases)),
        )

    async def _resolve(self, who: Principal, name: str, field: str, need: Any = READ) -> asyncpg.Record:
        """The committed version a name (or registry link name) refers to."""
        if self.links is not None and self.links.is_link(name):
            return await self.links.resolve(who, name, field, need)
        vn = names.parse_version(name, field)
        proj = vn.collection.project
        await self._access.require(who, proj.entity, need)
        index = names.version_index(vn.ref)
        sql = _VERSION_BY_INDEX if index is not None else _VERSION_BY_ALIAS
        row = await self._db.fetchrow(
            sql, proj.entity, proj.project, vn.collection.artifact, vn.ref if index is None else index
        )
        if row is None:
            raise NotFound(f"artifact version {name} not found", field=field)
        return row

    async def get_version(self, who: Principal, name: str) -> Version:
        return _version(await self._resolve(who, name, "name"))

    async def list_versions(
        self, who: Principal, parent: str, size: int, token: str, f: VersionFilter | None = None
    ) -> tuple[list[Version], str]:
        """Newest first; keyset pagination on the index."""
        f = f or VersionFilter()
        coll = names.parse_collection(parent)
        proj = coll.project
        size = page_size(size)
        scope = f"ListArtifactVersions|{coll}|{f.scope()}"
        cursor = self._pages.decode(scope, token)
        await self._access.require(who, proj.entity, READ)
        # Only the filters given become conditions (one prepared statement per
        # combination): "$n IS NULL OR ..." forms keep the planner from using
        # an index for any of them, so an alias filter walked the collection.
        args: list[Any] = [proj.entity, proj.project, coll.artifact]

        def arg(value: Any) -> str:
            args.append(value)
            return f"${len(args)}"

        where = ["e.name = $1", "p.name = $2", "c.name = $3", "v.state = 'committed'"]
        if cursor:
            where.append(f"v.index < {arg(int(cursor[0]))}")
        if f.alias:
            where.append(_ALIASED_VERSION_ID.format(alias=arg(f.alias)))
        if f.tag:
            where.append(f"v.tags @> ARRAY[{arg(f.tag)}::text]")
        if f.created_after:
            where.append(f"v.commit_time >= {arg(f.created_after)}")
        if f.created_before:
            where.append(f"v.commit_time < {arg(f.created_before)}")
        if f.metadata_key:
            match, key = arg(f.metadata_match()), arg(f.metadata_key)
            where.append(f"v.metadata @> {match}::jsonb AND v.metadata -> {key}::text = {match}::jsonb -> {key}::text")
        sql = f"{_VERSION_SELECT} WHERE {' AND '.join(where)} ORDER BY v.index DESC LIMIT {arg(size + 1)}"
        rows = await self._db.fetch(sql, *args)
        if not rows and cursor is None:
            await self._must_exist(proj, coll.artifact)
        page, nxt = self._pages.next(scope, list(rows), size, lambda r: [r["index"]])
        return [_version(r) for r in page], nxt

    # -- aliases, tags, updates ----------------------------------------------

    async def add_aliases(self, who: Principal, name: str, aliases: list[str]) -> Version:
        if not aliases:
            raise InvalidArgument("give at least one alias", field="aliases")
        for a in aliases:
            names.check_settable_alias(a)
        if self.links is not None and self.links.is_link(name):
            return await self.links.add_aliases(who, name, aliases)  # type: ignore[no-any-return]
        row = await self._resolve(who, name, "version", WRITE)
        async with self._db.transaction() as conn:
            await self._set_aliases(conn, row["collection_id"], row["id"], aliases)
            out = await conn.fetchrow(_VERSION_SELECT + " WHERE v.id = $1", row["id"])
        return _version(out)

    async def remove_aliases(self, who: Principal, name: str, aliases: list[str]) -> Version:
        if not aliases:
            raise InvalidArgument("give at least one alias", field="aliases")
        for a in aliases:
            names.check_settable_alias(a)
        if self.links is not None and self.links.is_link(name):
            return await self.links.remove_aliases(who, name, aliases)  # type: ignore[no-any-return]
        row = await self._resolve(who, name, "version", WRITE)
        async with self._db.transaction() as conn:
            removed = await conn.fetch(
                """
                DELETE FROM aliases WHERE collection_id = $1 AND version_id = $2
                  AND alias = ANY($3::text[]) RETURNING alias
                """,
                row["collection_id"],
                row["id"],
                sorted(set(aliases)),
            )
            missing = set(aliases) - {r["alias"] for r in removed}
            if missing:
                # Rolls back: all or nothing.
                raise NotFound(f"{name} has no alias {', '.join(sorted(missing))}", field="aliases")
            out = await conn.fetchrow(_VERSION_SELECT + " WHERE v.id = $1", row["id"])
        return _version(out)

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
        allowed = ("description", "metadata_json", "tags", "ttl")
        if not paths:
            raise InvalidArgument("update_mask names no field", field="update_mask")
        for p in paths:
            if p not in allowed:
                raise InvalidArgument(f"cannot update {p!r}: use {', '.join(allowed)}", field="update_mask")
        _check_description(description)
        metadata = _check_metadata(metadata_json)
        tag_list = check_tags(tags or [])
        inherit, own_ttl = check_ttl_mode(ttl_mode, ttl) if "ttl" in paths else (False, None)
        # Through a registry link too, changing a version needs write access to
        # the entity that logged it.
        row = await self._resolve(who, name, "version.name", READ)
        found = await self._access.check(who, row["entity_name"], WRITE)
        if "ttl" in paths:
            _ttl_permission(found)
        await self._db.execute(
            """
            UPDATE versions SET
                description = CASE WHEN $2 THEN $3 ELSE description END,
                metadata = CASE WHEN $4 THEN $5::jsonb ELSE metadata END,
                tags = CASE WHEN $6 THEN $7::text[] ELSE tags END,
                ttl = CASE WHEN $8 THEN $9::interval ELSE ttl END,
                ttl_inherit = CASE WHEN $8 THEN $10 ELSE ttl_inherit END
            WHERE id = $1
            """,
            row["id"],
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
        return _version(await self._db.fetchrow(_VERSION_SELECT + " WHERE v.id = $1", row["id"]))

    # -- listing -------------------------------------------------------------

    async def _must_exist(self, project: names.ProjectName, artifact: str = "", field: str = "parent") -> None:
        """NOT_FOUND naming what is missing: an empty listing of something that
        does not exist would hide a typo (asked only when a first page is empty)."""
        row = await self._db.fetchrow(
            """
            SELECT (SELECT c.id FROM collections c WHERE c.project_id = p.id AND c.name = $3) AS coll
            FROM projects p JOIN entities e ON e.id = p.entity_id WHERE e.name = $1 AND p.name = $2
            """,
            project.entity,
            project.project,
            artifact,
        )
        if row is None:
            raise NotFound(f"project {project} not found", field=field)
        if artifact and row["coll"] is None:
            raise NotFound(f"artifact {project}/artifacts/{artifact} not found", field=field)

    async def list_aliases(
        self, who: Principal, parent: str, size: int, token: str
    ) -> tuple[list[tuple[str, str, int]], str]:
        """(alias, version name, index) of a collection, by alias."""
        if self.links is not None and self.links.is_link_collection(parent):
            return await self.links.list_aliases(who, parent, size, token)
        coll = names.parse_collection(parent)
        size = page_size(size)
        scope = f"ListAliases|{coll}"
        cursor = self._pages.decode(scope, token)
        await self._access.require(who, coll.project.entity, READ)
        rows = await self._db.fetch(
            """
            SELECT a.alias, v.index FROM aliases a
            JOIN versions v ON v.id = a.version_id
            JOIN collections c ON c.id = a.collection_id
            JOIN projects p ON p.id = c.project_id JOIN entities e ON e.id = p.entity_id
            WHERE e.name = $1 AND p.name = $2 AND c.name = $3
              AND ($4::text IS NULL OR a.alias > $4)
            ORDER BY a.alias LIMIT $5
            """,
            coll.project.entity,
            coll.project.project,
            coll.artifact,
            str(cursor[0]) if cursor else None,
            size + 1,
        )
        if not rows and cursor is None:
            await self._must_exist(coll.project, coll.artifact)
        page, nxt = self._pages.next(scope, list(rows), size, lambda r: [r["alias"]])
        return [(r["alias"], f"{coll}/versions/v{r['index']}", r["index"]) for r in page], nxt

    async def list_projects(
        self, who: Principal, parent: str, size: int, token: str
    ) -> tuple[list[tuple[str, datetime]], str]:
        from .accounts import parse_entity

        entity = parse_entity(parent, "parent")
        size = page_size(size)
        scope = f"ListProjects|{entity}"
        cursor = self._pages.decode(scope, token)
        entity_id = await self._access.require(who, entity, READ)
        rows = await self._db.fetch(
            """
            SELECT name, create_time FROM projects
            WHERE entity_id = $1 AND ($2::text IS NULL OR name > $2) ORDER BY name LIMIT $3
            """,
            entity_id,
            str(cursor[0]) if cursor else None,
            size + 1,
        )
        page, nxt = self._pages.next(scope, list(rows), size, lambda r: [r["name"]])
        return [(f"entities/{entity}/projects/{r['name']}", r["create_time"]) for r in page], nxt

    async def list_collections(
        self, who: Principal, parent: str, type_: str, size: int, token: str
    ) -> tuple[list[dict[str, Any]], str]:
        project = names.parse_project(parent)
        if type_:
            names.check_part(type_, "type", "artifact type")
        size = page_size(size)
        scope = f"ListCollections|{project}|{type_}"
        cursor = self._pages.decode(scope, token)
        await self._access.require(who, project.entity, READ)
        rows = await self._db.fetch(
            """
            SELECT c.name, c.type, c.create_time,
                   (SELECT count(*) FROM versions v
                     WHERE v.collection_id = c.id AND v.state = 'committed') AS version_count
            FROM collections c JOIN projects p ON p.id = c.project_id
            JOIN entities e ON e.id = p.entity_id
            WHERE e.name = $1 AND p.name = $2 AND ($3 = '' OR c.type = $3)
              AND ($4::text IS NULL OR c.name > $4)
            ORDER BY c.name LIMIT $5
            """,
            project.entity,
            project.project,
            type_,
            str(cursor[0]) if cursor else None,
            size + 1,
        )
        if not rows and cursor is None:
            await self._must_exist(project)
        page, nxt = self._pages.next(scope, list(rows), size, lambda r: [r["name"]])
        return [{**dict(r), "name": f"{project}/artifacts/{r['name']}"} for r in page], nxt

    async def list_runs(self, who: Principal, parent: str, size: int, token: str) -> tuple[list[Run], str]:
        """Newest first."""
        project = names.parse_project(parent)
        size = page_size(size)
        scope = f"ListRuns|{project}"
        cursor = self._pages.decode(scope, token)
        await self._access.require(who, project.entity, READ)
        rows = await self._db.fetch(
            _RUN_SELECT
            + """
            WHERE e.name = $1 AND p.name = $2 AND ($3::bigint IS NULL OR r.id < $3)
            ORDER BY r.id DESC LIMIT $4
            """,
            project.entity,
            project.project,
            int(cursor[0]) if cursor else None,
            size + 1,
        )
        if not rows and cursor is None:
            await self._must_exist(project)
        page, nxt = self._pages.next(scope, list(rows), size, lambda r: [r["id"]])
        return [_run(r) for r in page], nxt

    async def use_version(self, who: Principal, run: str, name: str) -> Version:
        run_row = await self._run_row(who, run, WRITE, "run")
        row = await self._resolve(who, name, "version")
        await self._db.execute(
            "INSERT INTO run_inputs (run_id, version_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            run_row["id"],
            row["id"],
        )
        return _version(row)

    async def may_read(self, who: Principal, entity: str) -> bool:
        """Whether ``who`` holds a role on ``entity`` (a registry role is not one)."""
        found = await self._access.lookup(who, entity)
        return found is not None and found.role is not None
