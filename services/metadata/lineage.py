"""The lineage graph: versions and the runs that logged and used them (domain; no grpc).

A run that logged a version is its producer; a run that used a version is
a consumer. Walking upstream goes version -> producer run -> the versions
that run used -> ...; downstream goes version -> consumer runs -> the
versions they logged -> .... Each edge is one step of depth.

One recursive query walks the graph; nodes come out breadth-first (by
depth, then kind and id) and page with a keyset cursor on that order.
Nodes in entities the caller may not read are neither listed nor walked
through, so lineage never leaks another team's runs or versions; the walk
only counts them (``hidden_count``). Reading the start through a registry
link does not open the team's side of the graph: registry readers see the
linked version, not the runs around it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from depot.services.common.errors import InvalidArgument

from . import names, records
from .access import READ, WRITE, Access, Principal
from .db import Database
from .pages import PageTokens, page_size
from .records import Run, Version
from .resolver import Resolver
from .runs import Runs

_RUN_INPUT_INSERT = "INSERT INTO run_inputs (run_id, version_id) VALUES ($1, $2) ON CONFLICT DO NOTHING"

# The producer ($1) and the consumers of a version ($2), each with its entity
# so that the caller's view can be filtered: producer first, then by use.
_VERSION_RUNS = """
    SELECT r.*, p.name AS project_name, e.name AS entity_name, e.id AS entity_id, x.producer
    FROM (SELECT $1::bigint AS run_id, true AS producer, NULL::timestamptz AS use_time
          UNION ALL
          SELECT run_id, false, use_time FROM run_inputs WHERE version_id = $2) x
    JOIN runs r ON r.id = x.run_id
    JOIN projects p ON p.id = r.project_id
    JOIN entities e ON e.id = p.entity_id
    ORDER BY x.producer DESC, x.use_time, r.id
"""

MAX_DEPTH = 100
DIRECTIONS = ("up", "down")

_WALK = """
WITH RECURSIVE walk(kind, id, depth, pkind, pid, visible) AS (
    SELECT $1::text, $2::bigint, 0, NULL::text, NULL::bigint, true
  UNION
    SELECT n.kind, n.id, w.depth + 1, w.kind, w.id,
           ($5::bigint[] IS NULL OR n.entity_id = ANY($5::bigint[]))
    FROM walk w
    CROSS JOIN LATERAL (
        SELECT 'r'::text AS kind, v.producer_run_id AS id, p.entity_id
          FROM versions v JOIN runs r ON r.id = v.producer_run_id
          JOIN projects p ON p.id = r.project_id
         WHERE $3 = 'up' AND w.kind = 'v' AND v.id = w.id
        UNION ALL
        SELECT 'v', i.version_id, p.entity_id
          FROM run_inputs i JOIN versions v ON v.id = i.version_id
          JOIN collections c ON c.id = v.collection_id JOIN projects p ON p.id = c.project_id
         WHERE $3 = 'up' AND w.kind = 'r' AND i.run_id = w.id AND v.state = 'committed'
        UNION ALL
        SELECT 'r', i.run_id, p.entity_id
          FROM run_inputs i JOIN runs r ON r.id = i.run_id JOIN projects p ON p.id = r.project_id
         WHERE $3 = 'down' AND w.kind = 'v' AND i.version_id = w.id
        UNION ALL
        SELECT 'v', v.id, p.entity_id
          FROM versions v JOIN collections c ON c.id = v.collection_id
          JOIN projects p ON p.id = c.project_id
         WHERE $3 = 'down' AND w.kind = 'r' AND v.producer_run_id = w.id
           AND v.state = 'committed'
    ) n
    -- A node the caller may not read is reached (to be counted) but never
    -- walked through.
    WHERE w.depth < $4 AND w.visible
),
nodes AS (
    SELECT kind, id, min(depth) AS depth FROM walk
    WHERE depth > 0 AND visible AND NOT (kind = $1 AND id = $2) GROUP BY kind, id
),
hidden AS (
    SELECT count(DISTINCT (kind, id)) AS n FROM walk
    WHERE NOT visible AND NOT (kind = $1 AND id = $2)
),
page AS (
    SELECT n.kind, n.id, n.depth,
           array_agg(DISTINCT w.pkind || ':' || w.pid) AS parents
    FROM nodes n JOIN walk w ON w.kind = n.kind AND w.id = n.id AND w.depth = n.depth
    WHERE $6::int IS NULL OR (n.depth, n.kind, n.id) > ($6::int, $7::text, $8::bigint)
    GROUP BY n.kind, n.id, n.depth
    ORDER BY n.depth, n.kind, n.id
    LIMIT $9
)
-- The hidden count comes with every row, and alone (kind NULL) on an empty page.
SELECT p.*, h.n AS hidden FROM hidden h LEFT JOIN page p ON true
ORDER BY p.depth, p.kind, p.id
"""


@dataclass(frozen=True)
class VersionRuns:
    """A version with the run that logged it and the runs that used it."""

    version: Version
    producer: Run | None
    consumers: list[Run]
    # Producer and consumer runs left out: the caller may not read their entity.
    hidden_runs: int = 0


@dataclass
class Node:
    name: str
    depth: int
    version: Version | None = None
    run: Run | None = None


@dataclass
class Edge:
    source: str
    target: str
    kind: str  # "used" | "logged"


@dataclass
class Page:
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    next_page_token: str = ""
    # Nodes next to the walk left out because the caller may not read them.
    hidden_count: int = 0


class Lineage:
    def __init__(self, db: Database, access: Access, pages: PageTokens, runs: Runs, resolver: Resolver):
        self._db = db
        self._access = access
        self._pages = pages
        self._runs = runs
        self._resolver = resolver

    async def use_version(self, who: Principal, run: str, name: str) -> Version:
        """Records that ``run`` used the version (it becomes a consumer)."""
        run_row = await self._runs.row(who, run, WRITE, "run")
        found = await self._resolver.resolve(who, name, "version")
        await self._db.execute(_RUN_INPUT_INSERT, run_row["id"], found.id)
        return found.version

    async def lineage(self, who: Principal, name: str) -> VersionRuns:
        """The version, its producer and consumers, as far as ``who`` may read them.

        Reading a version (directly, or as a registry reader through a link)
        does not make its runs readable: runs of entities the caller has no
        role in are left out and counted, so lineage shows no more than
        GetRun would.
        """
        found = await self._resolver.resolve(who, name, "version")
        readable = await self._access.readable_entities(who)
        version, producer, consumers, hidden = found.version, None, [], 0
        for r in await self._db.fetch(_VERSION_RUNS, found.producer_run_id, found.id):
            if readable is not None and r["entity_id"] not in readable:
                hidden += 1
                if r["producer"]:
                    version = dataclasses.replace(version, producer_run="")
            elif r["producer"]:
                producer = records.run(r)
            else:
                consumers.append(records.run(r))
        return VersionRuns(version, producer, consumers, hidden)

    async def walk(self, who: Principal, start: str, direction: str, depth: int, size: int, token: str) -> Page:
        if direction not in DIRECTIONS:
            raise InvalidArgument("direction must be UPSTREAM or DOWNSTREAM", field="direction")
        depth = depth or 1
        if not 1 <= depth <= MAX_DEPTH:
            raise InvalidArgument(f"depth must be between 1 and {MAX_DEPTH}", field="depth")
        size = page_size(size)
        scope = f"WalkLineage|{start}|{direction}|{depth}"
        cursor = self._pages.decode(scope, token)
        if "/runs/" in start:
            row = await self._runs.row(who, start, READ, "start")
            kind, start_id, start_name = "r", row["id"], str(names.parse_run(start, "start"))
        else:
            found = await self._resolver.resolve(who, start, "start", READ)
            kind, start_id, start_name = "v", found.id, found.version.name
        readable = await self._access.readable_entities(who)
        rows = await self._db.fetch(
            _WALK,
            kind,
            start_id,
            direction,
            depth,
            sorted(readable) if readable is not None else None,
            *(cursor if cursor else (None, None, None)),
            size + 1,
        )
        hidden = rows[0]["hidden"]
        rows = [r for r in rows if r["kind"] is not None]
        page_rows, nxt = self._pages.next(scope, list(rows), size, lambda r: [r["depth"], r["kind"], r["id"]])
        keys = {(r["kind"], r["id"]) for r in page_rows}
        for r in page_rows:
            for p in r["parents"]:
                pk, _, pid = p.partition(":")
                keys.add((pk, int(pid)))
        loaded = await self._load(keys)
        loaded[(kind, start_id)] = loaded.get((kind, start_id)) or start_name
        out = Page(next_page_token=nxt, hidden_count=hidden)
        for r in page_rows:
            obj = loaded.get((r["kind"], r["id"]))
            # The start is never a node of its own walk, so a name (str) is only a parent.
            if obj is None or isinstance(obj, str):
                continue
            node = Node(obj.name, r["depth"])
            if isinstance(obj, Version):
                node.version = obj
            else:
                node.run = obj
            out.nodes.append(node)
            for p in sorted(r["parents"]):
                pk, _, pid = p.partition(":")
                parent = loaded.get((pk, int(pid)))
                if parent is None:
                    continue
                pname = parent if isinstance(parent, str) else parent.name
                out.edges.append(_edge(direction, pk, pname, r["kind"], node.name))
        return out

    async def _load(self, keys: set[tuple[str, int]]) -> dict[tuple[str, int], Version | Run | str]:
        """The versions and runs of the page's nodes and parents, two queries for the page."""
        vids = [i for k, i in keys if k == "v"]
        rids = [i for k, i in keys if k == "r"]
        out: dict[tuple[str, int], Version | Run | str] = {}
        if vids:
            for r in await self._db.fetch(records.VERSIONS_BY_IDS, vids):
                out[("v", r["id"])] = records.version(r)
        if rids:
            for r in await self._db.fetch(records.RUNS_BY_IDS, rids):
                out[("r", r["id"])] = records.run(r)
        return out


def _edge(direction: str, pkind: str, pname: str, kind: str, name: str) -> Edge:
    """The edge in data-flow order between a node and the one it was reached from."""
    version, run = (pname, name) if pkind == "v" else (name, pname)
    # Up from a version reaches its producer; up from a run reaches its inputs.
    logged = (direction == "up") == (pkind == "v")
    return Edge(run, version, "logged") if logged else Edge(version, run, "used")
