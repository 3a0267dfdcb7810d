"""Lineage shows only what the caller may read (issue 8, item 3).

The graph crosses teams: bob's run in team-a logs `va`; erin (in both
teams) uses it in a team-b run that logs `vb`, and uses `vb` in a team-a
run. bob reads team-a only, dave team-b only, mallory only the org's model
registry into which `va` is linked.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc
import pytest
from support.world import PROJECT, Meta, World, code, log_version

from depot.metadata.v1 import metadata_pb2 as pb

B_PROJECT = "entities/team-b/projects/q"
VA = f"{PROJECT}/artifacts/va/versions/v0"
VB = f"{B_PROJECT}/artifacts/vb/versions/v0"
RA = f"{PROJECT}/runs/ra"
RB = f"{B_PROJECT}/runs/rb"
RA2 = f"{PROJECT}/runs/ra2"
LINKED = "entities/acme/registries/model/collections/published/versions/v0"


def _run(m: Meta, parent: str, run_id: str) -> None:
    m.CreateRun(pb.CreateRunRequest(parent=parent, run_id=run_id, run=pb.Run(config_json='{"secret": 1}')))


def _use(m: Meta, run: str, version: str) -> None:
    m.UseArtifactVersion(pb.UseArtifactVersionRequest(run=run, version=version))


@pytest.fixture
def graph(world: World) -> World:
    bob, erin = world["bob"], world["erin"]
    world.member("team-a", "erin", "member")
    world.member("team-b", "erin", "member")
    _run(bob, PROJECT, "ra")
    log_version(bob, PROJECT, "va", RA, b"a")
    _run(erin, B_PROJECT, "rb")
    _use(erin, RB, VA)
    log_version(erin, B_PROJECT, "vb", RB, b"b")
    _run(erin, PROJECT, "ra2")
    _use(erin, RA2, VB)
    # mallory reads the org's model registry (visibility org), no team.
    world.member("acme", "bob", "member")
    world.member("acme", "mallory", "viewer")
    world.admin.SetRegistryMember(
        pb.SetRegistryMemberRequest(registry="entities/acme/registries/model", user="entities/bob", role="member")
    )
    bob.LinkArtifactVersion(
        pb.LinkArtifactVersionRequest(version=VA, target="entities/acme/registries/model/collections/published")
    )
    return world


@dataclass
class _Around:
    """A version's producer and consumers: one walk both ways, one step."""

    version: pb.ArtifactVersion
    producer: pb.Run | None
    consumers: list[pb.Run]
    hidden_run_count: int


def _lineage(m: Meta, version: str) -> _Around:
    page = m.WalkLineage(pb.WalkLineageRequest(start=version, direction=pb.DIRECTION_BOTH))
    logged_by = {e.source for e in page.edges if e.kind == "logged" and e.target == page.start.name}
    runs = [n.run for n in page.nodes]
    producer = next((r for r in runs if r.name in logged_by), None)
    consumers = [r for r in runs if r.name not in logged_by]
    return _Around(page.start.version, producer, consumers, page.hidden_count)


def _walk(m: Meta, start: str, direction: int) -> pb.WalkLineageResponse:
    return m.WalkLineage(pb.WalkLineageRequest(start=start, direction=direction, depth=10))


def _names(page: pb.WalkLineageResponse) -> list[str]:
    return [n.name for n in page.nodes]


def test_get_lineage_hides_runs_of_other_teams(graph: World) -> None:
    bob, dave, erin = graph["bob"], graph["dave"], graph["erin"]
    # GetRun on team-b's consumer is closed to bob; so is it in va's lineage.
    assert code(lambda: bob.GetRun(pb.GetRunRequest(name=RB))) == grpc.StatusCode.PERMISSION_DENIED
    lin = _lineage(bob, VA)
    assert lin.producer is not None
    assert (lin.producer.name, list(lin.consumers), lin.hidden_run_count) == (RA, [], 1)
    full = _lineage(erin, VA)
    assert ([r.name for r in full.consumers], full.hidden_run_count) == ([RB], 0)
    assert full.consumers[0].config_json == '{"secret": 1}'
    # And the other way round: team-a's consumer of team-b's version.
    lin = _lineage(dave, VB)
    assert lin.producer is not None
    assert (lin.producer.name, list(lin.consumers), lin.hidden_run_count) == (RB, [], 1)
    assert [r.name for r in _lineage(erin, VB).consumers] == [RA2]


def test_walk_lineage_hides_and_counts_both_directions(graph: World) -> None:
    bob, dave, erin = graph["bob"], graph["dave"], graph["erin"]
    down, up = pb.DIRECTION_DOWNSTREAM, pb.DIRECTION_UPSTREAM
    assert _names(_walk(erin, VA, down)) == [RB, VB, RA2]
    # bob stops at team-b's run: not listed, not walked through (so not ra2
    # of his own team either), counted.
    page = _walk(bob, VA, down)
    assert (_names(page), list(page.edges), page.hidden_count) == ([], [], 1)
    page = _walk(dave, VB, up)
    assert (_names(page), page.hidden_count) == ([RB], 1)
    assert _names(_walk(erin, VB, up)) == [RB, VA, RA]
    page = _walk(dave, VB, down)
    assert (_names(page), page.hidden_count) == ([], 1)
    page = _walk(bob, RA2, up)
    assert (_names(page), page.hidden_count) == ([], 1)
    assert _walk(erin, VA, down).hidden_count == 0


def test_registry_reader_sees_the_linked_version_not_the_teams_runs(graph: World) -> None:
    bob, mallory = graph["bob"], graph["mallory"]
    assert code(lambda: mallory.GetRun(pb.GetRunRequest(name=RA))) == grpc.StatusCode.PERMISSION_DENIED
    got = mallory.GetArtifactVersion(pb.GetArtifactVersionRequest(name=LINKED))
    assert got.name == VA and got.producer_run == ""
    assert bob.GetArtifactVersion(pb.GetArtifactVersionRequest(name=LINKED)).producer_run == RA
    lin = _lineage(mallory, LINKED)
    assert (lin.version.name, lin.version.producer_run) == (VA, "")
    assert (lin.producer, list(lin.consumers), lin.hidden_run_count) == (None, [], 2)
    links = mallory.ListLinks(pb.ListLinksRequest(parent=LINKED.rsplit("/versions/", 1)[0])).links
    assert [(x.version.name, x.version.producer_run) for x in links] == [(VA, "")]
    assert [x.version.producer_run for x in bob.ListLinks(pb.ListLinksRequest(parent=links[0].collection)).links] == [
        RA
    ]
    page = _walk(mallory, LINKED, pb.DIRECTION_UPSTREAM)
    assert (_names(page), page.hidden_count) == ([], 1)
    page = _walk(mallory, LINKED, pb.DIRECTION_DOWNSTREAM)
    assert (_names(page), page.hidden_count) == ([], 1)
