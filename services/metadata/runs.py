"""Runs: create, read, finish (domain; no grpc)."""

from __future__ import annotations

import secrets

import asyncpg

from depot.services.common.errors import AlreadyExists, InvalidArgument, NotFound

from . import names, records
from .access import READ, WRITE, Access, Principal, Role
from .db import Database
from .fields import check_metadata
from .projects import Projects
from .records import Run

_RUN_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"

_RUN_INSERT = "INSERT INTO runs (project_id, name, job_type, config) VALUES ($1, $2, $3, $4)"
RUN_BY_NAME = records.RUN_SELECT + " WHERE e.name = $1 AND p.name = $2 AND r.name = $3"
# Finishing twice keeps the first finish.
_RUN_FINISH = "UPDATE runs SET state = $2, finish_time = now() WHERE id = $1 AND state = 'running'"


class Runs:
    def __init__(self, db: Database, access: Access, projects: Projects):
        self._db = db
        self._access = access
        self._projects = projects

    async def create_run(self, who: Principal, parent: str, run_id: str, job_type: str, config_json: str) -> Run:
        project = names.parse_project(parent)
        if run_id:
            names.check_part(run_id, "run_id", "run id")
        else:
            run_id = "".join(secrets.choice(_RUN_ALPHABET) for _ in range(8))
        if job_type:
            names.check_part(job_type, "run.job_type", "job type")
        config = check_metadata(config_json, "run.config_json")
        found = await self._access.check(who, project.entity, WRITE)
        try:
            # One transaction: a run that cannot be made leaves no project.
            async with self._db.transaction():
                pid = await self._projects.made(found, project)
                await self._db.execute(_RUN_INSERT, pid, run_id, job_type, config)
        except asyncpg.UniqueViolationError:
            raise AlreadyExists(f"run {project}/runs/{run_id} already exists", field="run_id") from None
        return await self.get_run(who, f"{project}/runs/{run_id}")

    async def row(self, who: Principal, name: str, need: Role, field: str) -> asyncpg.Record:
        """The run's ``RUN_SELECT`` row if ``who`` holds ``need`` on its entity."""
        rn = names.parse_run(name, field)
        await self._access.require(who, rn.project.entity, need)
        row = await self._db.fetchrow(RUN_BY_NAME, rn.project.entity, rn.project.project, rn.run)
        if row is None:
            raise NotFound(f"run {name} not found", field=field)
        return row

    async def get_run(self, who: Principal, name: str) -> Run:
        return records.run(await self.row(who, name, READ, "name"))

    async def finish_run(self, who: Principal, name: str, state: str) -> Run:
        state = state or "finished"
        if state not in ("finished", "failed"):
            raise InvalidArgument("state must be 'finished' or 'failed'", field="state")
        row = await self.row(who, name, WRITE, "name")
        await self._db.execute(_RUN_FINISH, row["id"], state)
        return await self.get_run(who, name)
