"""The blob collector's roots and entities in metadata's tables (public: services/gc uses it).

Every manifest a remaining version row names is a root of the mark: live,
deleted but still in its grace period, and pending rows alike (purged rows
are gone, and with them their claim). The rows are streamed with a
server-side cursor inside one REPEATABLE READ snapshot, so a pass over
millions of versions holds one batch of them at a time and sees one
consistent set; a version committed after the snapshot is protected by the
age rules instead (docs/gc.md).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

from .db import Connection

# Rows fetched per round trip of the cursor.
BATCH = 5000

# $1: an entity name, or '' for all. DISTINCT: versions sharing a manifest
# (the same content in several collections) have it read once. Unordered:
# the mark sorts what it derives from the manifests (services/gc/extsort.py).
_ROOTS = """
    SELECT DISTINCT e.name AS entity, v.manifest_id
    FROM versions v
    JOIN collections c ON c.id = v.collection_id
    JOIN projects p ON p.id = c.project_id
    JOIN entities e ON e.id = p.entity_id
    WHERE v.manifest_id IS NOT NULL AND ($1::text = '' OR e.name = $1)
"""


# $1: an entity name, or '' for all. The only names the collector sweeps:
# a store's root may hold other folders (a bucket shared with user data).
_ENTITIES = "SELECT name FROM entities WHERE $1::text = '' OR name = $1"


async def entity_names(conn: Connection, entity: str) -> list[str]:
    """The names of metadata's entities (``entity`` alone, if it is one; '' = all)."""
    return [r["name"] for r in await conn.fetch(_ENTITIES, entity)]


async def manifest_roots(conn: Connection, entity: str) -> AsyncGenerator[list[tuple[str, str]], None]:
    """(entity, manifest id) of every remaining version with a manifest, in batches.

    Opens its own read-only REPEATABLE READ transaction on ``conn`` (which
    must not be in one) for as long as the caller iterates.
    """
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        cursor = await conn.cursor(_ROOTS, entity)
        while rows := await cursor.fetch(BATCH):
            yield [(r["entity"], r["manifest_id"]) for r in rows]


__all__ = ["BATCH", "entity_names", "manifest_roots"]
