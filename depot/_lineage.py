"""Lineage over the wire: the graph around a version or a run, page by page.

The typed views are on the model (``depot._artifact``)::

    art.logged_by()          # RunInfo of the producing run, or None
    art.used_by()            # [RunInfo, ...]
    run.logged_artifacts()   # [Artifact, ...]
    run.used_artifacts()     # [Artifact, ...]
    Api().lineage("team/proj/ds:v3")   # the producer and consumer runs of a version

This module only pages through WalkLineage and returns its messages.
"""

from __future__ import annotations

from collections.abc import Iterator

from depot.metadata.v1 import metadata_pb2 as pb

from ._client import Client
from ._exceptions import InvalidArgumentError

_DIRECTIONS = {"upstream": pb.DIRECTION_UPSTREAM, "downstream": pb.DIRECTION_DOWNSTREAM}


def walk(
    client: Client, start: str, direction: str, depth: int = 1, page_size: int = 200
) -> Iterator[pb.WalkLineageResponse]:
    """Pages of the lineage graph from a version or run resource name."""
    if direction not in _DIRECTIONS:
        raise InvalidArgumentError("direction must be 'upstream' or 'downstream'", field="direction")
    token = ""
    while True:
        page = client.call(
            client.metadata.WalkLineage,
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
