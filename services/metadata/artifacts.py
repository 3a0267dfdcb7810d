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

from depot.services.common.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
)

from . import names
from .access import READ, WRITE, Access, Principal

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
    ttl: timedelta | None
    aliases: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        ref = f"v{self.index}" if self.index is not None else self.uid
        return f"{self.collection}/versions/{ref}"


@dataclass
class Run:
    name: str
    job_type: str
    state: str
    config: dict[str, Any]
    create_time: datetime
    finish_time: datetime | None


@dataclass
class Lineage:
    version: Version
    producer: Run | None
    consumers: list[Run]


_VERSION_SELECT = """
    SELECT v.*, c.name AS collection_name, c.type, p.name AS project_name,
           e.name AS entity_name,
           (SELECT 'entities/' || pe.name || '/projects/' || pp.name || '/runs/' || r.name
              FROM runs r JOIN projects pp ON pp.id = r.project_id
              JOIN entities pe ON pe.id = pp.entity_id
             WHERE r.id = v.producer_run_id) AS producer_run,
           COALESCE((SELECT array_agg(a.alias ORDER BY a.alias) FROM aliases a
                      WHERE a.version_id = v.id), '{}') AS aliases
    FROM versions v
    JOIN collections c ON c.id = v.collection_id
    JOIN projects p ON p.id = c.project_id
    JOIN entities e ON e.id = p.entity_id
"""


def _version(row: asyncpg.Record) -> Version:
    return Version(
        collection=(
            f"entities/{row['entity_name']}/projects/{row['project_name']}"
            f"/artifacts/{row['collection_name']}"
        ),
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


def _check_metadata(metadata_json: str) -> dict[str, Any]:
    if not metadata_json:
        return {}
    if len(metadata_json.encode()) > MAX_METADATA_BYTES:
        raise InvalidArgument(
            f"metadata is larger than {MAX_METADATA_BYTES} bytes", field="metadata_json"
        )
    try:
        value = json.loads(metadata_json)
    except ValueError as e:
        raise InvalidArgument(f"metadata is not valid JSON: {e}", field="metadata_json") from None
    if not isinstance(value, dict):
        raise InvalidArgument("metadata must be a JSON object", field="metadata_json")
    return value


def _check_ttl(ttl: timedelta | None) -> timedelta | None:
    if ttl is not None and ttl < timedelta(seconds=1):
        raise InvalidArgument(
            "ttl must be at least one second (omit it to keep the version forever)", field="ttl"
        )
    return ttl


class Artifacts:
    def __init__(self, pool: asyncpg.Pool, access: Access):
        self._pool = pool
        self._access = access

    # -- projects and runs -------------------------------------------------

    async def _project_id(self, who: Principal, project: names.ProjectName, need: Any) -> int:
        entity_id = await self._access.require(who, project.entity, need)
        if need >= WRITE:
            pid = await self._pool.fetchval(
                """
                INSERT INTO projects (entity_id, name) VALUES ($1, $2)
                ON CONFLICT (entity_id, name) DO UPDATE SET name = EXCLUDED.name
                RETURNING id
                """,
                entity_id,
                project.project,
            )
        else:
            pid = await self._pool.fetchval(
                "SELECT id FROM projects WHERE entity_id = $1 AND name = $2",
                entity_id,
                project.project,
            )
            if pid is None:
                raise NotFound(f"project {project} not found", field="parent")
        return int(pid)

    async def create_run(
        self, who: Principal, parent: str, run_id: str, job_type: str, config_json: str
    ) -> Run:
        project = names.parse_project(parent)
        if run_id:
            names.check_part(run_id, "run_id", "run id")
        else:
            run_id = "".join(secrets.choice(_RUN_ALPHABET) for _ in range(8))
        if job_type:
            names.check_part(job_type, "run.job_type", "job type")
        config = _check_metadata(config_json)
        pid = await self._project_id(who, project, WRITE)
        try:
            await self._pool.execute(
                "INSERT INTO runs (project_id, name, job_type, config) VALUES ($1, $2, $3, $4)",
                pid,
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
        row = await self._pool.fetchrow(
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
        await self._pool.execute(
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
    ) -> Version:
        project = names.parse_project(parent)
        names.check_part(artifact, "artifact", "artifact name")
        names.check_part(type_, "type", "artifact type")
        if len(description) > MAX_DESCRIPTION:
            raise InvalidArgument(
                f"description is longer than {MAX_DESCRIPTION} characters", field="description"
            )
        metadata = _check_metadata(metadata_json)
        _check_ttl(ttl)
        pid = await self._project_id(who, project, WRITE)
        run_id = None
        if run:
            run_row = await self._run_row(who, run, WRITE, "run")
            if run_row["project_id"] != pid:
                raise InvalidArgument("the run belongs to another project", field="run")
            run_id = run_row["id"]
        uid = uuid.uuid4()
        async with self._pool.acquire() as conn, conn.transaction():
            coll = await conn.fetchrow(
                """
                INSERT INTO collections (project_id, name, type) VALUES ($1, $2, $3)
                ON CONFLICT (project_id, name) DO UPDATE SET name = EXCLUDED.name
                RETURNING id, type
                """,
                pid,
                artifact,
                type_,
            )
            if coll["type"] != type_:
                raise FailedPrecondition(
                    f"artifact {project}/artifacts/{artifact} has type {coll['type']!r}; "
                    f"it cannot be logged as {type_!r}",
                    field="type",
                    reason="TYPE_MISMATCH",
                )
            await conn.execute(
                """
                INSERT INTO versions (uid, collection_id, description, metadata, producer_run_id, ttl)
                VALUES ($1, $2, $3, $4, $5, $6)
                """,
                uid,
                coll["id"],
                description,
                metadata,
                run_id,
                ttl,
            )
        return await self._get_by_uid(str(uid))

    async def _get_by_uid(self, uid: str, conn: Any = None) -> Version:
        row = await (conn or self._pool).fetchrow(_VERSION_SELECT + " WHERE v.uid = $1", uid)
        if row is None:
            raise NotFound(f"version {uid} not found", field="uid")
        return _version(row)

    async def commit_version(
        self, who: Principal, uid: str, manifest: ManifestInfo, aliases: list[str]
    ) -> Version:
        try:
            parsed = uuid.UUID(uid)
        except ValueError:
            raise InvalidArgument(f"invalid version uid {uid!r}", field="uid") from None
        for a in aliases:
            names.check_settable_alias(a)
        # Access is checked before taking a connection for the transaction:
        # holding one while asking the pool for another can exhaust the pool.
        row = await self._pool.fetchrow(
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
        async with self._pool.acquire() as conn, conn.transaction():
            # Serializes commits of this collection: index assignment and the
            # digest check below see every earlier commit.
            await conn.execute(
                "SELECT 1 FROM collections WHERE id = $1 FOR UPDATE", row["collection_id"]
            )
            state = await conn.fetchval("SELECT state FROM versions WHERE id = $1", row["id"])
            if state is None:
                # Deduplicated by an earlier attempt: the pending row is gone.
                raise NotFound(
                    f"pending version {uid} was already committed as an existing version",
                    field="uid",
                )
            if state != "pending":
                # A retried commit of a version that already went through.
                return await self._get_by_uid(uid, conn)
            existing = await conn.fetchval(
                """
                SELECT id FROM versions
                WHERE collection_id = $1 AND state = 'committed' AND digest = $2
                ORDER BY index DESC LIMIT 1
                """,
                row["collection_id"],
                manifest.digest,
            )
            if existing is not None:
                await conn.execute("DELETE FROM versions WHERE id = $1", row["id"])
                await self._set_aliases(conn, row["collection_id"], existing, aliases)
                result_id = existing
            else:
                index = await conn.fetchval(
                    """
                    UPDATE collections SET next_index = next_index + 1 WHERE id = $1
                    RETURNING next_index - 1
                    """,
                    row["collection_id"],
                )
                await conn.execute(
                    """
                    UPDATE versions SET state = 'committed', index = $2, digest = $3,
                        digest_algorithm = $4, manifest_id = $5, size = $6, file_count = $7,
                        commit_time = now()
                    WHERE id = $1
                    """,
                    row["id"],
                    index,
                    manifest.digest,
                    manifest.digest_algorithm,
                    manifest.manifest_id,
                    manifest.size,
                    manifest.file_count,
                )
                await self._set_aliases(conn, row["collection_id"], row["id"], ["latest", *aliases])
                result_id = row["id"]
            out = await conn.fetchrow(_VERSION_SELECT + " WHERE v.id = $1", result_id)
            return _version(out)

    @staticmethod
    async def _set_aliases(
        conn: asyncpg.Connection, collection_id: int, version_id: int, aliases: list[str]
    ) -> None:
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

    async def _resolve(self, who: Principal, name: str, field: str) -> asyncpg.Record:
        vn = names.parse_version(name, field)
        proj = vn.collection.project
        await self._access.require(who, proj.entity, READ)
        base = _VERSION_SELECT + """
            WHERE e.name = $1 AND p.name = $2 AND c.name = $3 AND v.state = 'committed'
        """
        index = names.version_index(vn.ref)
        if index is not None:
            row = await self._pool.fetchrow(
                base + " AND v.index = $4", proj.entity, proj.project, vn.collection.artifact, index
            )
        else:
            row = await self._pool.fetchrow(
                base
                + " AND v.id = (SELECT a.version_id FROM aliases a WHERE a.collection_id = c.id"
                " AND a.alias = $4)",
                proj.entity,
                proj.project,
                vn.collection.artifact,
                vn.ref,
            )
        if row is None:
            raise NotFound(f"artifact version {name} not found", field=field)
        return row

    async def get_version(self, who: Principal, name: str) -> Version:
        return _version(await self._resolve(who, name, "name"))

    async def list_versions(
        self, who: Principal, parent: str, page_size: int, after_index: int | None
    ) -> tuple[list[Version], int | None]:
        """Newest first; keyset pagination on the index."""
        coll = names.parse_collection(parent)
        proj = coll.project
        await self._access.require(who, proj.entity, READ)
        page_size = min(max(page_size or 50, 1), 1000)
        rows = await self._pool.fetch(
            _VERSION_SELECT
            + """
            WHERE e.name = $1 AND p.name = $2 AND c.name = $3 AND v.state = 'committed'
              AND ($4::int IS NULL OR v.index < $4)
            ORDER BY v.index DESC LIMIT $5
            """,
            proj.entity,
            proj.project,
            coll.artifact,
            after_index,
            page_size + 1,
        )
        versions = [_version(r) for r in rows[:page_size]]
        more = len(rows) > page_size
        return versions, (versions[-1].index if more else None)

    async def use_version(self, who: Principal, run: str, name: str) -> Version:
        run_row = await self._run_row(who, run, WRITE, "run")
        row = await self._resolve(who, name, "version")
        await self._pool.execute(
            "INSERT INTO run_inputs (run_id, version_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            run_row["id"],
            row["id"],
        )
        return _version(row)

    async def lineage(self, who: Principal, name: str) -> Lineage:
        row = await self._resolve(who, name, "version")
        producer = None
        if row["producer_run_id"] is not None:
            p = await self._pool.fetchrow(_RUN_SELECT + " WHERE r.id = $1", row["producer_run_id"])
            producer = _run(p) if p else None
        consumers = await self._pool.fetch(
            _RUN_SELECT
            + " JOIN run_inputs i ON i.run_id = r.id WHERE i.version_id = $1 ORDER BY i.use_time",
            row["id"],
        )
        return Lineage(_version(row), producer, [_run(c) for c in consumers])
