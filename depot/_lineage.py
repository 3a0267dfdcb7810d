"""Lineage from the SDK: who logged a version, who used it, what a run logged and used.

art.logged_by()          # RunInfo of the producing run, or None
art.used_by()            # [RunInfo, ...]
run.logged_artifacts()   # [Artifact, ...]
Api().lineage_graph("team/proj/ds:v3", direction="downstream", depth=3)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from depot.metadata.v1 import metadata_pb2 as pb

from ._client import Client

if TYPE_CHECKING:
    from ._artifact import Artifact

_DIRECTIONS = {
    "upstream": pb.DIRECTION_UPSTREAM,
    "downstream": pb.DIRECTION_DOWNSTREAM,
    "both": pb.DIRECTION_BOTH,
}


@dataclass(frozen=True)
class RunInfo:
    """A run as lineage sees it (read-only)."""

    name: str
    job_type: str
    state: str
    _client: Client

    @property
    def entity(self) -> str:
        return self.name.split("/")[1]

    @property
    def project(self) -> str:
        return self.name.split("/")[3]

    @property
    def id(self) -> str:
        return self.name.split("/")[5]

    def logged_artifacts(self) -> list[Artifact]:
        """Versions this run logged."""
        return _neighbours(self._client, self.name, "downstream")  # type: ignore[return-value]

    def used_artifacts(self) -> list[Artifact]:
        """Versions this run used."""
        return _neighbours(self._client, self.name, "upstream")  # type: ignore[return-value]


def walk(
    client: Client, start: str, direction: str, depth: int = 1, page_size: int = 200
) -> Iterator[pb.WalkLineageResponse]:
    """Pages of the lineage graph from a version or run resource name."""
    if direction not in _DIRECTIONS:
        from ._exceptions import InvalidArgumentError

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


@dataclass(frozen=True)
class Lineage:
    """A version with the run that logged it and the runs that used it.

    Runs of entities the caller may not read are left out and counted in
    ``hidden_run_count``.
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


def _neighbours(client: Client, start: str, direction: str) -> list[Artifact | RunInfo]:
    from ._registry import artifact_from_version

    out: list[Artifact | RunInfo] = []
    for page in walk(client, start, direction, 1):
        for n in page.nodes:
            if n.HasField("run"):
                out.append(RunInfo(n.run.name, n.run.job_type, n.run.state, client))
            else:
                out.append(artifact_from_version(client, n.version))
    return out


def logged_by(art: Artifact) -> RunInfo | None:
    v = art._logged()
    assert art._client is not None
    runs = _neighbours(art._client, v.name, "upstream")
    return runs[0] if runs else None  # type: ignore[return-value]


def used_by(art: Artifact) -> list[RunInfo]:
    v = art._logged()
    assert art._client is not None
    return _neighbours(art._client, v.name, "downstream")  # type: ignore[return-value]
