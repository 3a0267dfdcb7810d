"""Issue 8, items 10 and 15: reads never create, and a typo is NOT_FOUND naming it.

A superuser's read of a missing entity used to create it (as a team, with no
name check), so `depot registry ls acme` made `acme` a team and
`depot org create acme` then failed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import pytest
from support.world import COLL, PROJECT, TEAM, Meta, World, code

from depot.cli import main
from depot.metadata.v1 import metadata_pb2 as pb

NOT_FOUND = grpc.StatusCode.NOT_FOUND


def _reads(entity: str) -> list[Callable[[Meta], Any]]:
    proj = f"entities/{entity}/projects/proj"
    coll = f"{proj}/artifacts/ds"
    reg = f"entities/{entity}/registries/model"
    return [
        lambda m: m.GetEntity(pb.GetEntityRequest(name=f"entities/{entity}")),
        lambda m: m.ListMembers(pb.ListMembersRequest(entity=f"entities/{entity}")),
        lambda m: m.ListProjects(pb.ListProjectsRequest(parent=f"entities/{entity}")),
        lambda m: m.ListCollections(pb.ListCollectionsRequest(parent=proj)),
        lambda m: m.ListRuns(pb.ListRunsRequest(parent=proj)),
        lambda m: m.ListArtifactVersions(pb.ListArtifactVersionsRequest(parent=coll)),
        lambda m: m.ListAliases(pb.ListAliasesRequest(parent=coll)),
        lambda m: m.GetArtifactVersion(pb.GetArtifactVersionRequest(name=f"{coll}/versions/latest")),
        lambda m: m.GetRun(pb.GetRunRequest(name=f"{proj}/runs/r")),
        lambda m: m.ListRegistries(pb.ListRegistriesRequest(parent=f"entities/{entity}")),
        lambda m: m.GetRegistry(pb.GetRegistryRequest(name=reg)),
        lambda m: m.ListRegistryCollections(pb.ListRegistryCollectionsRequest(parent=reg)),
        lambda m: m.ListLinks(pb.ListLinksRequest(parent=f"{reg}/collections/c")),
    ]


def _entities(w: World) -> set[str]:
    return {e.name for e in w.admin.ListEntities(pb.ListEntitiesRequest(page_size=1000)).entities}


def test_superuser_reads_of_a_missing_entity_are_not_found_and_create_nothing(world: World) -> None:
    before = _entities(world)
    for i, read in enumerate(_reads("typoteam")):
        with pytest.raises(grpc.RpcError) as err:
            read(world.admin)
        assert (i, err.value.code()) == (i, NOT_FOUND)  # type: ignore[attr-defined]
        assert "typoteam" in err.value.details()  # type: ignore[attr-defined]
    assert _entities(world) == before
    # The name is free: an explicit create still works, as an org.
    org = world.admin.CreateEntity(pb.CreateEntityRequest(entity_id="typoteam", entity=pb.Entity(kind="org")))
    assert org.kind == "org"
    assert {
        r.name.rsplit("/", 1)[1]
        for r in world.admin.ListRegistries(pb.ListRegistriesRequest(parent="entities/typoteam")).registries
    } == {"model", "dataset"}


def test_others_get_the_same_answer_for_missing_and_forbidden(world: World) -> None:
    """Below superuser, a missing entity looks like one without a role: no names leak."""
    mallory = world["mallory"]
    for missing, forbidden in zip(_reads("typoteam"), _reads(TEAM), strict=True):
        assert code(lambda: missing(mallory)) == code(lambda: forbidden(mallory)) == grpc.StatusCode.PERMISSION_DENIED


def test_missing_project_collection_and_registry_collection_are_not_found(world: World) -> None:
    world.admin.log(TEAM, "p", "ds", {"f": b"x"})
    bob = world["bob"]
    for read, name in [
        (lambda: bob.ListArtifactVersions(pb.ListArtifactVersionsRequest(parent=f"{PROJECT}/artifacts/typo")), "typo"),
        (lambda: bob.ListAliases(pb.ListAliasesRequest(parent=f"{PROJECT}/artifacts/typo")), "typo"),
        (lambda: bob.ListCollections(pb.ListCollectionsRequest(parent=f"entities/{TEAM}/projects/nope")), "nope"),
        (lambda: bob.ListRuns(pb.ListRunsRequest(parent=f"entities/{TEAM}/projects/nope")), "nope"),
        (
            lambda: world.admin.ListLinks(pb.ListLinksRequest(parent="entities/acme/registries/model/collections/c9")),
            "c9",
        ),
    ]:
        with pytest.raises(grpc.RpcError) as err:
            read()
        assert err.value.code() == NOT_FOUND and name in err.value.details()  # type: ignore[attr-defined]
    # What exists but is empty (a filter that matches nothing) is still an empty page.
    empty = bob.ListArtifactVersions(pb.ListArtifactVersionsRequest(parent=COLL, alias="no-such-alias"))
    assert list(empty.versions) == []


def test_bad_names_are_refused_before_anything_is_created(world: World) -> None:
    before = _entities(world)
    for bad in ("Team A/../x y", "x y", "a\nb"):
        req = pb.ListArtifactVersionsRequest(parent=f"entities/{bad}/projects/p/artifacts/ds")
        assert code(lambda: world.admin.ListArtifactVersions(req)) in (
            grpc.StatusCode.INVALID_ARGUMENT,
            NOT_FOUND,
        )
        made = pb.CreateEntityRequest(entity_id=bad, entity=pb.Entity(kind="team"))
        assert code(lambda: world.admin.CreateEntity(made)) == grpc.StatusCode.INVALID_ARGUMENT
    assert _entities(world) == before


def test_cli_reads_exit_non_zero_and_the_readme_order_works(
    server, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DEPOT_ADDRESS", server.address)
    monkeypatch.setenv("DEPOT_API_KEY", server.admin_key)

    def cli(*args: str) -> tuple[int, str, str]:
        rc = main(list(args))
        out, err = capsys.readouterr()
        return rc, out, err

    for args in (("artifact", "ls", "typoteam/proj/ds"), ("registry", "ls", "acme")):
        rc, out, err = cli(*args)
        assert rc == 1 and out == "" and len(err.strip().splitlines()) == 1, (args, out, err)
        assert "NotFoundError" in err and args[2].split("/")[0] in err
    rc, out, _ = cli("entity", "ls")
    assert "typoteam" not in out and "acme" not in out
    assert cli("org", "create", "acme")[0] == 0
    rc, out, _ = cli("registry", "ls", "acme")
    assert rc == 0 and "model" in out and "dataset" in out
