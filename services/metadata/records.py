"""The artifact domain's records: rows become frozen objects here, and only here.

Every query that reads a version or a run for a reply selects the columns
``VERSION_SELECT`` / ``RUN_SELECT`` list, and :func:`version` / :func:`run`
turn such a row into a record; the other modules never read those columns
by name. A version reached through a registry link carries the link as
:class:`LinkRef` (its own field, not extra keys in a row).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from depot.services.common import validate

# A row as read, or one a caller completed with what it already knew.
Row = asyncpg.Record | Mapping[str, Any]

# A version with the names, aliases and TTL default a reply shows; the
# callers add the WHERE clause. Producer run and aliases come from
# subqueries so that one row is one version.
VERSION_SELECT = """
    SELECT v.*, c.name AS collection_name, c.type, p.name AS project_name,
           e.name AS entity_name, e.id AS entity_id,
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
VERSION_BY_ID = VERSION_SELECT + " WHERE v.id = $1"
VERSION_BY_UID = VERSION_SELECT + " WHERE v.uid = $1"
VERSIONS_BY_IDS = VERSION_SELECT + " WHERE v.id = ANY($1)"

RUN_SELECT = """
    SELECT r.*, p.name AS project_name, e.name AS entity_name
    FROM runs r JOIN projects p ON p.id = r.project_id JOIN entities e ON e.id = p.entity_id
"""
RUNS_BY_IDS = RUN_SELECT + " WHERE r.id = ANY($1)"


@dataclass(frozen=True)
class ManifestInfo:
    """What the manifest service signed about a stored manifest."""

    entity: str
    manifest_id: str
    digest: str
    digest_algorithm: str
    size: int
    file_count: int


@dataclass(frozen=True)
class LinkRef:
    """A registry link: the name a version was reached by, with the link's own index and aliases."""

    collection: str
    index: int
    aliases: tuple[str, ...]
    create_time: datetime

    @property
    def name(self) -> str:
        return f"{self.collection}/versions/v{self.index}"


@dataclass(frozen=True)
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
    aliases: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    ttl_inherit: bool = False
    # What applies now: the own TTL, or the entity's default when inheriting.
    effective_ttl: timedelta | None = None
    linked: bool = False
    # Set when the version was reached through a registry link.
    link: LinkRef | None = None
    # Set on a deleted version: when, until when it can be restored, and
    # who deleted it ("user" or "ttl").
    delete_time: datetime | None = None
    purge_time: datetime | None = None
    delete_reason: str = ""

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

    def seen_by_registry_reader(self) -> Version:
        """The version as a registry reader without a role on its team sees it:
        registry readers see the version, not the team's runs."""
        return dataclasses.replace(self, producer_run="")


@dataclass(frozen=True)
class Run:
    name: str
    job_type: str
    state: str
    config: dict[str, Any]
    create_time: datetime
    finish_time: datetime | None


@dataclass(frozen=True)
class Project:
    name: str
    create_time: datetime


@dataclass(frozen=True)
class Collection:
    name: str
    type: str
    create_time: datetime
    version_count: int


@dataclass(frozen=True)
class RegistryCollection:
    name: str
    type: str
    create_time: datetime
    link_count: int


@dataclass(frozen=True)
class Alias:
    alias: str
    version: str
    index: int


def collection_name(entity: str, project: str, collection: str) -> str:
    return f"entities/{entity}/projects/{project}/artifacts/{collection}"


def version(row: Row, link: LinkRef | None = None) -> Version:
    """A ``VERSION_SELECT`` row as a record."""
    return Version(
        collection=collection_name(row["entity_name"], row["project_name"], row["collection_name"]),
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
        aliases=tuple(row["aliases"]),
        tags=tuple(row["tags"]),
        ttl_inherit=row["ttl_inherit"],
        effective_ttl=row["entity_default_ttl"] if row["ttl_inherit"] else row["ttl"],
        linked=row["linked"],
        link=link,
        delete_time=row["delete_time"] if row["state"] == "deleted" else None,
        purge_time=row["purge_time"],
        delete_reason=row["delete_reason"] or "",
    )


def run(row: Row) -> Run:
    """A ``RUN_SELECT`` row as a record."""
    return Run(
        name=f"entities/{row['entity_name']}/projects/{row['project_name']}/runs/{row['name']}",
        job_type=row["job_type"],
        state=row["state"],
        config=row["config"],
        create_time=row["create_time"],
        finish_time=row["finish_time"],
    )
