"""Lineage over the wire: the graph around a version or a run, page by page.

The typed views are on the model (``depot._artifact``)::

    art.logged_by()          # RunInfo of the producing run, or None
    art.used_by()            # [RunInfo, ...]
    run.logged_artifacts()   # [Artifact, ...]
    run.used_artifacts()     # [Artifact, ...]
    Api().lineage("team/proj/ds:v3")   # the producer and consumer runs of a version

This module only pages through WalkLineage and returns its messages
(``around`` sorts one walk's runs into producer and consumers).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from depot.metadata.v1 import metadata_pb2 as pb

from ._client import Client
from ._exceptions import InvalidArgumentError

_DIRECTIONS = {
    "upstream": pb.DIRECTION_UPSTREAM,
    "downstream": pb.DIRECTION_DOWNSTREAM,
    "both": pb.DIRECTION_BOTH,
}


def walk(
    client: Client, start: str, direction: str, depth: int = 1, page_size: int = 200
) -> Iterator[pb.WalkLineageResponse]:
    """Pages of the lineage graph from a version or run resource name."""
    if direction not in _DIRECTIONS:
        raise InvalidArgumentError("direction must be 'upstream', 'downstream' or 'both'", field="direction")
    token = ""
    while True:
        page = client.call(
            client.lineage.WalkLineage,
            pb.WalkLineageRequest(
                start=start,
                direction=_DIRECTIONS[direction],
                depth=depth,
                page_size=page_size,
                page_token=token,
            ),
        )
        yield page
        token = page.next_page_token
        if not token:
            return


def neighbours(client: Client, start: str, direction: str) -> list[pb.LineageNode]:
    """The nodes one step from ``start``: the runs of a version, or the versions of a run."""
    return [n for page in walk(client, start, direction, 1) for n in page.nodes]


@dataclass(frozen=True)
class Lineage:
    """A version with the run that logged it and the runs that used it.

    Runs of entities the caller may not read are left out and counted in
    ``hidden_run_count``; the version's ``producer_run`` is empty then.
    """

    version: pb.ArtifactVersion
    producer: pb.Run | None
    consumers: list[pb.Run]
    hidden_run_count: int


def around(client: Client, version: str) -> Lineage:
    """The lineage one step both ways from a version resource name."""
    pages = list(walk(client, version, "both"))
    start = pages[0].start
    # The producer is the run with a "logged" edge into the version; every
    # other run one step away used it.
    logged_by = {e.source for p in pages for e in p.edges if e.kind == "logged" and e.target == start.name}
    runs = [n.run for p in pages for n in p.nodes]
    producer = next((r for r in runs if r.name in logged_by), None)
    consumers = [r for r in runs if r.name not in logged_by]
    return Lineage(start.version, producer, consumers, pages[0].hidden_count)
