"""Lineage over the wire: the graph around a version or a run, page by page.

The typed views are on the model (``depot._artifact``)::

    art.logged_by()          # RunInfo of the producing run, or None
    art.used_by()            # [RunInfo, ...]
    run.logged_artifacts()   # [Artifact, ...]
    run.used_artifacts()     # [Artifact, ...]
    Api().lineage("team/proj/ds:v3")   # the producer and consumer runs of a version

This module pages through WalkLineage (``walk``); ``around`` sorts one
walk's runs into producer and consumers. Runs in entities the caller may
not read are never sent, only counted: a hidden producer is None.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from depot.metadata.v1 import metadata_pb2 as pb

from ._client import Client
from ._exceptions import InvalidArgumentError
from ._paging import pages

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
    return pages(
        lambda token: client.call(
            client.lineage.WalkLineage,
            pb.WalkLineageRequest(
                start=start, direction=_DIRECTIONS[direction], depth=depth, page_size=page_size, page_token=token
            ),
        )
    )


def neighbours(client: Client, start: str, direction: str) -> list[pb.LineageNode]:
    """The nodes one step from ``start``: the runs of a version, or the versions of a run."""
    return [n for page in walk(client, start, direction, 1) for n in page.nodes]


@dataclass(frozen=True)
class Lineage:
    """A version with the run that logged it and the runs that used it.

    Attributes:
        version: The version; its ``producer_run`` is empty when the caller
            may not read the producing run's entity.
        producer: The run that logged the version; None when none did or
            when the caller may not read its entity (it is hidden).
        consumers: The runs that used the version, in the order they used it.
        hidden_run_count: Runs around the version left out because the
            caller may not read their entity (a hidden producer included).
    """

    version: pb.ArtifactVersion
    producer: pb.Run | None
    consumers: list[pb.Run]
    hidden_run_count: int


def around(client: Client, version: str) -> Lineage:
    """The lineage one step both ways from a version resource name."""
    walked = list(walk(client, version, "both"))
    start = walked[0].start
    # The producer is the run with a "logged" edge into the version, the
    # consumers those with a "used" edge out of it (a run may be both).
    edges = [e for p in walked for e in p.edges]
    logged_by = {e.source for e in edges if e.kind == "logged" and e.target == start.name}
    used_by = {e.target for e in edges if e.kind == "used" and e.source == start.name}
    runs = [n.run for p in walked for n in p.nodes]
    producer = next((r for r in runs if r.name in logged_by), None)
    # The walk lists them in the order they used the version.
    consumers = [r for r in runs if r.name in used_by]
    return Lineage(start.version, producer, consumers, walked[0].hidden_count)
