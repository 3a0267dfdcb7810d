"""Paged lists of the artifact side: projects, collections, runs, versions (domain; no grpc).

Every page is a keyset page (pages.py): the cursor is the last row's sort
key, signed and bound to the listing's scope. An empty first page of a
parent that does not exist is NOT_FOUND, not an empty list.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from depot.services.common import validate
from depot.services.common.errors import InvalidArgument

from . import names, records
from .access import READ, WRITE, Access, Principal
from .db import Database
from .fields import MAX_DESCRIPTION, MAX_METADATA_BYTES
from .names import parse_entity
from .pages import PageTokens, page_size
from .projects import Projects
from .records import Collection, Project, Run, Version
from .resolver import ALIASED_VERSION_ID

_PROJECTS_PAGE = """
    SELECT name, create_time FROM projects
    WHERE entity_id = $1 AND ($2::text IS NULL OR name > $2) ORDER BY name LIMIT $3
"""
_COLLECTIONS_PAGE = """
    SELECT c.name, c.type, c.create_time,
           (SELECT count(*) FROM versions v
             WHERE v.collection_id = c.id AND v.state = 'committed') AS version_count
    FROM collections c JOIN projects p ON p.id = c.project_id
    JOIN entities e ON e.id = p.entity_id
    WHERE e.name = $1 AND p.name = $2 AND ($3 = '' OR c.type = $3)
      AND ($4::text IS NULL OR c.name > $4)
    ORDER BY c.name LIMIT $5
"""
_RUNS_PAGE = (
    records.RUN_SELECT
    + """
    WHERE e.name = $1 AND p.name = $2 AND ($3::bigint IS NULL OR r.id < $3)
    ORDER BY r.id DESC LIMIT $4
"""
)
# Versions of a collection ($1 entity, $2 project, $3 collection), newest
# first; ListArtifactVersions adds the state and a condition per filter given.
_VERSIONS_OF = records.VERSION_SELECT + " WHERE e.name = $1 AND p.name = $2 AND c.name = $3"
_LIVE = "v.state = 'committed'"
# Deleted and still restorable: past purge_time the GC may remove it any moment.
_IN_GRACE = "v.state = 'deleted' AND v.purge_time > now()"


@dataclass(frozen=True)
class VersionFilter:
    alias: str = ""
    tag: str = ""
    created_after: datetime | None = None
    created_before: datetime | None = None
    metadata_key: str = ""
    metadata_value_json: str = ""
    # Deleted versions still in their grace period instead of live ones.
    show_deleted: bool = False

    def __post_init__(self) -> None:
        if self.alias:
            names.check_part(self.alias, "alias", "alias")
            if self.show_deleted:
                raise InvalidArgument("deleted versions hold no alias: drop alias or show_deleted", field="alias")
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
                self.show_deleted,
            ]
        )


class Listings:
    def __init__(self, db: Database, access: Access, pages: PageTokens, projects: Projects):
        self._db = db
        self._access = access
        self._pages = pages
        self._projects = projects

    async def list_projects(self, who: Principal, parent: str, size: int, token: str) -> tuple[list[Project], str]:
        entity = parse_entity(parent, "parent")
        size = page_size(size)
        scope = f"ListProjects|{entity}"
        cursor = self._pages.decode(scope, token)
        entity_id = await self._access.require(who, entity, READ)
        rows = await self._db.fetch(_PROJECTS_PAGE, entity_id, str(cursor[0]) if cursor else None, size + 1)
        page, nxt = self._pages.next(scope, list(rows), size, lambda r: [r["name"]])
        return [Project(f"entities/{entity}/projects/{r['name']}", r["create_time"]) for r in page], nxt

    async def list_collections(
        self, who: Principal, parent: str, type_: str, size: int, token: str
    ) -> tuple[list[Collection], str]:
        project = names.parse_project(parent)
        if type_:
            names.check_part(type_, "type", "artifact type")
        size = page_size(size)
        scope = f"ListCollections|{project}|{type_}"
        cursor = self._pages.decode(scope, token)
        await self._access.require(who, project.entity, READ)
        rows = await self._db.fetch(
            _COLLECTIONS_PAGE,
            project.entity,
            project.project,
            type_,
            str(cursor[0]) if cursor else None,
            size + 1,
        )
        if not rows and cursor is None:
            await self._projects.must_exist(project)
        page, nxt = self._pages.next(scope, list(rows), size, lambda r: [r["name"]])
        return [
            Collection(f"{project}/artifacts/{r['name']}", r["type"], r["create_time"], r["version_count"])
            for r in page
        ], nxt

    async def list_runs(self, who: Principal, parent: str, size: int, token: str) -> tuple[list[Run], str]:
        """Newest first."""
        project = names.parse_project(parent)
        size = page_size(size)
        scope = f"ListRuns|{project}"
        cursor = self._pages.decode(scope, token)
        await self._access.require(who, project.entity, READ)
        rows = await self._db.fetch(
            _RUNS_PAGE, project.entity, project.project, int(cursor[0]) if cursor else None, size + 1
        )
        if not rows and cursor is None:
            await self._projects.must_exist(project)
        page, nxt = self._pages.next(scope, list(rows), size, lambda r: [r["id"]])
        return [records.run(r) for r in page], nxt

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
        # Deleted versions are listed for undelete, to those who may undelete.
        await self._access.require(who, proj.entity, WRITE if f.show_deleted else READ)
        # Only the filters given become conditions (one prepared statement per
        # combination): "$n IS NULL OR ..." forms keep the planner from using
        # an index for any of them, so an alias filter walked the collection.
        args: list[Any] = [proj.entity, proj.project, coll.artifact]

        def arg(value: Any) -> str:
            args.append(value)
            return f"${len(args)}"

        where = [_VERSIONS_OF, _IN_GRACE if f.show_deleted else _LIVE]
        if f.alias:
            # First of the optional arguments: ALIASED_VERSION_ID takes it as $4.
            arg(f.alias)
            where.append(ALIASED_VERSION_ID)
        if cursor:
            where.append(f"v.index < {arg(int(cursor[0]))}")
        if f.tag:
            where.append(f"v.tags @> ARRAY[{arg(f.tag)}::text]")
        if f.created_after:
            where.append(f"v.commit_time >= {arg(f.created_after)}")
        if f.created_before:
            where.append(f"v.commit_time < {arg(f.created_before)}")
        if f.metadata_key:
            match, key = arg(f.metadata_match()), arg(f.metadata_key)
            where.append(f"v.metadata @> {match}::jsonb AND v.metadata -> {key}::text = {match}::jsonb -> {key}::text")
        sql = f"{' AND '.join(where)} ORDER BY v.index DESC LIMIT {arg(size + 1)}"
        rows = await self._db.fetch(sql, *args)
        if not rows and cursor is None:
            await self._projects.must_exist(proj, coll.artifact)
        page, nxt = self._pages.next(scope, list(rows), size, lambda r: [r["index"]])
        return [records.version(r) for r in page], nxt
