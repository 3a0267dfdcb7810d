"""A page of registry links costs the same queries however many links it holds (no N+1).

The domain runs against a real PostgreSQL through a pool of one connection,
whose query logger (asyncpg's ``add_query_logger``) records every statement.
"""

from __future__ import annotations

import asyncio

import asyncpg

from depot.services.metadata.access import Access, Principal
from depot.services.metadata.db import Database, create_pool
from depot.services.metadata.pages import PageTokens
from depot.services.metadata.registries import Link, Registries
from depot.services.metadata.registry_access import RegistryAccess
from depot.services.metadata.resolver import Resolver

PARENT = "entities/acme/registries/model/collections/best"


async def _world(conn: asyncpg.Connection, links: int) -> tuple[Principal, Principal]:
    """An org with a registry collection of ``links`` links to versions of two teams (each
    logged by a run); ``reader`` is an org member with a role on team-a only."""
    ids = {}
    for name, kind in (("acme", "org"), ("team-a", "team"), ("team-b", "team"), ("reader", "user")):
        ids[name] = await conn.fetchval("INSERT INTO entities (name, kind) VALUES ($1, $2) RETURNING id", name, kind)
    await conn.execute(
        "INSERT INTO memberships (entity_id, user_id, role) VALUES ($1, $3, 'member'), ($2, $3, 'viewer')",
        ids["acme"],
        ids["team-a"],
        ids["reader"],
    )
    rc = await conn.fetchval(
        """
        WITH r AS (INSERT INTO registries (org_id, name, core) VALUES ($1, 'model', true) RETURNING id)
        INSERT INTO registry_collections (registry_id, name, type) SELECT id, 'best', 'model' FROM r RETURNING id
        """,
        ids["acme"],
    )
    for i in range(links):
        team = "team-a" if i % 2 == 0 else "team-b"
        await conn.execute(
            """
            WITH p AS (INSERT INTO projects (entity_id, name) VALUES ($1, $2) RETURNING id),
                 run AS (INSERT INTO runs (project_id, name) SELECT id, 'r' FROM p RETURNING id),
                 c AS (INSERT INTO collections (project_id, name, type, next_index)
                       SELECT id, 'm', 'model', 1 FROM p RETURNING id),
                 v AS (INSERT INTO versions (uid, collection_id, state, index, digest, digest_algorithm,
                                             manifest_id, size, file_count, commit_time, producer_run_id)
                       SELECT gen_random_uuid(), c.id, 'committed', 0, 'd', 'xxh3_128', 'm', 1, 1, now(), run.id
                       FROM c, run RETURNING id),
                 l AS (INSERT INTO links (collection_id, version_id, index) SELECT $3, id, $4 FROM v RETURNING id)
            INSERT INTO link_aliases (collection_id, alias, link_id) SELECT $3, 'a' || $4, id FROM l
            """,
            ids[team],
            f"p{i}",
            rc,
            i,
        )
    return Principal(ids["reader"], "reader", False), Principal(0, "root", True)


def _scenario(database_url: str, links: int) -> tuple[list[Link], list[Link], int]:
    async def run() -> tuple[list[Link], list[Link], int]:
        pool = await create_pool(database_url, min_size=1, max_size=1)
        try:
            async with pool.acquire() as conn:
                reader, root = await _world(conn, links)
            db = Database(pool)
            access = Access(db)
            registry_access = RegistryAccess(db, access)
            registries = Registries(
                db, access, PageTokens(b"k" * 32), registry_access, Resolver(db, access, registry_access)
            )
            as_root, _ = await registries.list_links(root, PARENT, 100, "")
            queries: list[str] = []
            async with pool.acquire() as conn:
                conn.add_query_logger(lambda record: queries.append(record.query))
            as_reader, _ = await registries.list_links(reader, PARENT, 100, "")
            return as_root, as_reader, len(queries)
        finally:
            await pool.close()

    return asyncio.run(run())


def test_a_page_of_links_is_a_fixed_number_of_queries(database_url: str) -> None:
    as_root, as_reader, queries = _scenario(database_url, 6)
    # The registry check, the page, and what the reader may read.
    assert queries == 3
    assert [link.name for link in as_reader] == [f"{PARENT}/versions/v{i}" for i in range(5, -1, -1)]
    assert [link.aliases for link in as_reader] == [(f"a{i}",) for i in range(5, -1, -1)]
    for link in as_reader:
        assert link.version.link is not None and link.version.link.name == link.name
        assert link.version.name.startswith("entities/team-")
    # A registry reader sees the versions, not the runs of a team it has no role in.
    producers = {link.version.collection.split("/")[1]: link.version.producer_run for link in as_reader}
    assert producers["team-a"].startswith("entities/team-a/projects/")
    assert producers["team-b"] == ""
    assert all(link.version.producer_run for link in as_root)


def test_more_links_do_not_cost_more_queries(database_url: str) -> None:
    *_, one = _scenario(database_url, 1)
    assert one == 3
