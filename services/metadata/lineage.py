"""The lineage graph: versions and the runs that logged and used them (domain; no grpc).

A run that logged a version is its producer; a run that used a version is
a consumer. Walking upstream goes version -> producer run -> the versions
that run used -> ...; downstream goes version -> consumer runs -> the
versions they logged -> .... Each edge is one step of depth. A walk both
ways is the two walks together (each stays in its direction), so depth 1
from a version is its producer and consumers.

One recursive query walks the graph; nodes come out breadth-first (by
depth, then kind, then when the latest edge that reached them was recorded
-- a run using a version, a run logging one -- then id) and page with a
keyset cursor on that order: a version's consumers come in the order they
used it.
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

# The entity of a version's producer run: a caller who may not read it sees
# the start version without its producer_run, as GetRun would refuse it.
_PRODUCER_ENTITY = "SELECT p.entity_id FROM runs r JOIN projects p ON p.id = r.project_id WHERE r.id = $1"

MAX_DEPTH = 100
DIRECTIONS = ("up", "down", "both")

_WALK = """
WITH RECURSIVE walk(kind, id, depth, pkind, pid, visible, dir, t) AS (
    SELECT $1::text, $2::bigint, 0, NULL::text, NULL::bigint, true, d, NULL::timestamptz
    FROM unnest(CASE WHEN $3 = 'both' THEN ARRAY['up', 'down'] ELSE ARRAY[$3::text] END) d
  UNION
    SELECT n.kind, n.id, w.depth + 1, w.kind, w.id,
           ($5::bigint[] IS NULL OR n.entity_id = ANY($5::bigint[])), w.dir, n.t
    FROM walk w
    CROSS JOIN LATERAL (
        SELECT 'r'::text AS kind, v.producer_run_id AS id, p.entity_id, v.create_time AS t
          FROM versions v JOIN runs r ON r.id = v.producer_run_id
          JOIN projects p ON p.id = r.project_id
         WHERE w.dir = 'up' AND w.kind = 'v' AND v.id = w.id
        UNION ALL
        SELECT 'v', i.version_id, p.entity_id, i.use_time
          FROM run_inputs i JOIN versions v ON v.id = i.version_id
          JOIN collections c ON c.id = v.collection_id JOIN projects p ON p.id = c.project_id
         WHERE w.dir = 'up' AND w.kind = 'r' AND i.run_id = w.id AND v.state = 'committed'
        UNION ALL
        SELECT 'r', i.run_id, p.entity_id, i.use_time
          FROM run_inputs i JOIN runs r ON r.id = i.run_id JOIN projects p ON p.id = r.project_id
         WHERE w.dir = 'down' AND w.kind = 'v' AND i.version_id = w.id
        UNION ALL
        SELECT 'v', v.id, p.entity_id, v.create_time
          FROM versions v JOIN collections c ON c.id = v.collection_id
          JOIN projects p ON p.id = c.project_id
         WHERE w.dir = 'down' AND w.kind = 'r' AND v.producer_run_id = w.id
           AND v.state = 'committed'
    ) n
    -- A node the caller may not read is reached (to be counted) but never
    -- walked through.
    WHERE w.depth < $4 AND w.visible
),
-- A node at its first depth, ordered by the latest edge that reached it
-- there: a run that logged the start and then used it sorts by its use.
-- t in microseconds, a cursor value that round-trips exactly.
nodes AS (
    SELECT DISTINCT ON (kind, id) kind, id, depth, (extract(epoch FROM t) * 1000000)::bigint AS t FROM walk
    WHERE depth > 0 AND visible AND NOT (kind = $1 AND id = $2)
    ORDER BY kind, id, depth, t DESC
),
hidden AS (
    SELECT count(DISTINCT (kind, id)) AS n FROM walk
    WHERE NOT visible AND NOT (kind = $1 AND id = $2)
),
page AS (
    SELECT n.kind, n.id, n.depth, n.t,
           array_agg(DISTINCT w.dir || ':' || w.pkind || ':' || w.pid) AS parents
    FROM nodes n JOIN walk w ON w.kind = n.kind AND w.id = n.id AND w.depth = n.depth
    WHERE $6::int IS NULL OR (n.depth, n.kind, n.t, n.id) > ($6::int, $7::text, $8::bigint, $9::bigint)
    GROUP BY n.kind, n.id, n.depth, n.t
    ORDER BY n.depth, n.kind, n.t, n.id
    LIMIT $10
)
-- The hidden count comes with every row, and alone (kind NULL) on an empty page.
SELECT p.*, h.n AS hidden FROM hidden h LEFT JOIN page p ON true
ORDER BY p.depth, p.kind, p.t, p.id
"""


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
    # The start as the caller may see it (depth 0).
    start: Node
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

    async def walk(self, who: Principal, start: str, direction: str, depth: int, size: int, token: str) -> Page:
        if direction not in DIRECTIONS:
            raise InvalidArgument("direction must be UPSTREAM, DOWNSTREAM or BOTH", field="direction")
        depth = depth or 1
        if not 1 <= depth <= MAX_DEPTH:
            raise InvalidArgument(f"depth must be between 1 and {MAX_DEPTH}", field="depth")
        size = page_size(size)
        # ".v2": the cursor gained the edge time (use-time order); a token from an
        # older server must fail its MAC (INVALID_ARGUMENT), not reach SQL with
        # the wrong number of values.
        scope = f"WalkLineage.v2|{start}|{direction}|{depth}"
        cursor = self._pages.decode(scope, token)
        readable = await self._access.readable_entities(who)
        if "/runs/" in start:
            row = await self._runs.row(who, start, READ, "start")
            kind, start_id = "r", row["id"]
            first = Node(str(names.parse_run(start, "start")), 0, run=records.run(row))
        else:
            found = await self._resolver.resolve(who, start, "start", READ)
            version = found.version
            if version.producer_run and readable is not None and found.producer_run_id is not None:
                if await self._db.fetchval(_PRODUCER_ENTITY, found.producer_run_id) not in readable:
                    version = dataclasses.replace(version, producer_run="")
            kind, start_id, first = "v", found.id, Node(version.name, 0, version=version)
        rows = await self._db.fetch(
            _WALK,
            kind,
            start_id,
            direction,
            depth,
            sorted(readable) if readable is not None else None,
            *(cursor if cursor else (None, None, None, None)),
            size + 1,
        )
        hidden = rows[0]["hidden"]
        rows = [r for r in rows if r["kind"] is not None]
        page_rows, nxt = self._pages.next(scope, list(rows), size, lambda r: [r["depth"], r["kind"], r["t"], r["id"]])
        keys = {(r["kind"], r["id"]) for r in page_rows}
        for r in page_rows:
            for p in r["parents"]:
                _, pk, pid = p.split(":")
                keys.add((pk, int(pid)))
        loaded = await self._load(keys)
        loaded[(kind, start_id)] = first.name
        out = Page(first, next_page_token=nxt, hidden_count=hidden)
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
                walked, pk, pid = p.split(":")
                parent = loaded.get((pk, int(pid)))
                if parent is None:
                    continue
                pname = parent if isinstance(parent, str) else parent.name
                out.edges.append(_edge(walked, pk, pname, r["kind"], node.name))
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
