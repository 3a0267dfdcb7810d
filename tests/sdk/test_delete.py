"""The SDK's delete and undelete (issue 12, item 1) against a real server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from support.servers import ServerThread
from support.world import World

import depot
from depot.metadata.v1 import metadata_pb2 as pb


def _log(run: depot.Run, tmp_path: Path, data: bytes, aliases: list[str] | None = None) -> depot.Artifact:
    f = tmp_path / f"f-{data.hex()}.bin"
    f.write_bytes(data)
    art = depot.Artifact("ds", type="dataset")
    art.add_file(f, name="data.bin")
    return run.log_artifact(art, aliases=aliases or []).wait()


def _kw(server: ServerThread, world: World, user: str) -> dict[str, Any]:
    return {"address": server.address, "api_key": world[user].key}


def test_delete_and_undelete(world: World, server: ServerThread, tmp_path: Path) -> None:
    kw = _kw(server, world, "bob")
    with depot.init(entity="team-a", project="p", job_type="prep", **kw) as run:
        _log(run, tmp_path, b"zero")
        one = _log(run, tmp_path, b"one", aliases=["prod"])
    api = depot.Api(**kw)
    # Custom aliases need delete_aliases: the error names them.
    with pytest.raises(depot.FailedPreconditionError, match="prod"):
        one.delete()
    one.delete(delete_aliases=True)
    assert api.artifact("team-a/p/ds:latest").version == "v0"
    with pytest.raises(depot.NotFoundError):
        api.artifact("team-a/p/ds:v1")
    assert [a.version for a in api.artifact_versions("team-a/p/ds")] == ["v0"]
    assert [a.version for a in api.deleted_artifact_versions("team-a/p/ds")] == ["v1"]
    # Through Api().artifact(...) too.
    api.artifact("team-a/p/ds:v0").delete()
    with pytest.raises(depot.NotFoundError):
        api.artifact("team-a/p/ds:latest")
    back = api.undelete_artifact("team-a/p/ds:v1")
    assert (back.artifact.version, back.restored_aliases, back.lost_aliases) == ("v1", ["prod"], [])
    assert sorted(back.artifact.aliases) == ["latest", "prod"]
    # The bytes are there again.
    out = back.artifact.download(tmp_path / "out")
    assert (Path(out) / "data.bin").read_bytes() == b"one"
    # An alias never names a deleted version.
    with pytest.raises(depot.InvalidArgumentError):
        api.undelete_artifact("team-a/p/ds:latest")


def test_refusals_map_to_sdk_errors(world: World, server: ServerThread, tmp_path: Path) -> None:
    with depot.init(entity="team-a", project="p", job_type="prep", **_kw(server, world, "bob")) as run:
        art = _log(run, tmp_path, b"x")
    # A viewer reads it but may not delete it; another team's member may not even read it.
    seen = depot.Api(**_kw(server, world, "carol")).artifact("team-a/p/ds:v0")
    with pytest.raises(depot.PermissionDeniedError):
        seen.delete()
    with pytest.raises(depot.PermissionDeniedError):
        depot.Api(**_kw(server, world, "dave")).undelete_artifact("team-a/p/ds:v0")
    # Linked into a registry: unlink first.
    world.member("acme", "bob", "member")
    world.admin.SetRegistryMember(
        pb.SetRegistryMemberRequest(registry="entities/acme/registries/model", user="entities/bob", role="member")
    )
    world.admin.CreateRegistry(
        pb.CreateRegistryRequest(parent="entities/acme", registry_id="data", registry=pb.Registry(visibility="org"))
    )
    world.admin.SetRegistryMember(
        pb.SetRegistryMemberRequest(registry="entities/acme/registries/data", user="entities/bob", role="member")
    )
    linked = art.link("acme/wandb-registry-data/golden")
    with pytest.raises(depot.FailedPreconditionError, match="unlink"):
        art.delete()
    linked.unlink()
    art.delete()
    # Deleting again is answered as is; purged or unknown is NOT_FOUND.
    art.delete()
    with pytest.raises(depot.NotFoundError):
        depot.Api(**_kw(server, world, "bob")).undelete_artifact("team-a/p/ds:v7")
