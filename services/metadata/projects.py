"""Projects: made by the first run or version logged into them (domain; no grpc).

Also the NOT_FOUND of listings under a project or collection that does not exist.

Projects are never renamed or deleted, so their ids are cached per process.
"""

from __future__ import annotations

import math
from typing import Any

import asyncpg

from depot.services.common.caching import ExpiringCache
from depot.services.common.errors import Aborted, NotFound

from . import names
from .access import EntityAccess
from .db import Connection, Database

# Get-or-create without writing when the row exists: an upsert with
# "DO UPDATE" would rewrite (and row-lock) a hot project or collection row
# on every call, queueing creates behind commits that hold that lock.
PROJECT_GET_OR_CREATE = """
    WITH found AS (SELECT id FROM projects WHERE entity_id = $1 AND name = $2),
         made AS (INSERT INTO projects (entity_id, name)
                  SELECT $1, $2 WHERE NOT EXISTS (SELECT 1 FROM found)
                  ON CONFLICT (entity_id, name) DO NOTHING RETURNING id)
    SELECT id FROM found UNION ALL SELECT id FROM made
"""
# The project's row, if it exists, with its collection's id (NULL if missing).
_PROJECT_AND_COLLECTION = """
    SELECT (SELECT c.id FROM collections c WHERE c.project_id = p.id AND c.name = $3) AS coll
    FROM projects p JOIN entities e ON e.id = p.entity_id WHERE e.name = $1 AND p.name = $2
"""

_PROJECT_CACHE = 100_000


async def get_or_create(conn: Database | Connection, sql: str, *args: Any) -> asyncpg.Record:
    """Runs a found-or-made query; a lost insert race reads the winner's row."""
    for _ in range(3):
        got = await conn.fetchrow(sql, *args)
        if got is not None:
            return got
    raise Aborted("concurrent creation kept conflicting; retry")


class Projects:
    def __init__(self, db: Database):
        self._db = db
        # Project ids by (entity id, name): projects are never renamed or
        # deleted, so a committed id stays right; one query less per commit.
        # Bounded: the least recently used id makes room (caching.py).
        self._ids: ExpiringCache[tuple[int, str], int] = ExpiringCache("metadata.projects", _PROJECT_CACHE)

    async def made(self, found: EntityAccess, project: names.ProjectName) -> int:
        """The project's id, created if missing (logging into a project makes
        it). Call it after every other check, inside the transaction of the
        work that needs it, so that a refused request leaves no project."""
        key = (found.id, project.project)
        cached = self._ids.get(key)
        if cached is not None:
            return cached
        pid = int((await get_or_create(self._db, PROJECT_GET_OR_CREATE, found.id, project.project))["id"])
        self._db.on_commit(lambda: self._ids.put(key, pid, until=math.inf))  # never stale: see above
        return pid

    async def must_exist(self, project: names.ProjectName, artifact: str = "", field: str = "parent") -> None:
        """NOT_FOUND naming what is missing: an empty listing of something that
        does not exist would hide a typo (asked only when a first page is empty)."""
        row = await self._db.fetchrow(_PROJECT_AND_COLLECTION, project.entity, project.project, artifact)
        if row is None:
            raise NotFound(f"project {project} not found", field=field)
        if artifact and row["coll"] is None:
            raise NotFound(f"artifact {project}/artifacts/{artifact} not found", field=field)
