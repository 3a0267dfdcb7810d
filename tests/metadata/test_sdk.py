"""The SDK side: registry paths and links, TTL, lineage helpers."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.world import World

import depot
from depot._paths import parse_artifact_path, parse_registry_target
from depot.metadata.v1 import metadata_pb2 as pb


def test_registry_path_spellings() -> None:
    for path in ("acme/wandb-registry-model/churn:prod", "acme/registry/model/churn:prod"):
        p = parse_artifact_path(path)
        assert p.version_resource == "entities/acme/registries/model/collections/churn/versions/prod"
    p = parse_artifact_path("wandb-registry-model/churn", org="acme")
    assert p.version_resource.endswith("registries/model/collections/churn/versions/latest")
    assert parse_artifact_path("e/p/registry").collection_resource == "entities/e/projects/p/artifacts/registry"
    with pytest.raises(depot.InvalidArgumentError):
        parse_registry_target("acme/wandb-registry-model/churn:v1")
    with pytest.raises(depot.InvalidArgumentError):
        parse_registry_target("e/p/name")


@pytest.fixture
def sdk_world(world: World, server) -> World:
    world.member("acme", "bob", "member")
    world.admin.SetRegistryMember(
        pb.SetRegistryMemberRequest(registry="entities/acme/registries/model", user="entities/bob", role="member")
    )
    return world


def _model(tmp_path: Path, data: bytes, name: str = "churn", type_: str = "model") -> depot.Artifact:
    f = tmp_path / f"w-{data.hex()}.bin"
    f.write_bytes(data)
    art = depot.Artifact(name, type=type_)
    art.add_file(f, name="weights.bin")
    return art


def test_link_and_resolve_through_the_sdk(sdk_world: World, server, tmp_path: Path) -> None:
    kw = {"address": server.address, "api_key": sdk_world["bob"].key}
    with depot.init(entity="team-a", project="p", job_type="train", **kw) as run:
        a = run.log_artifact(_model(tmp_path, b"one")).wait()
        linked = run.link_artifact(a, "acme/wandb-registry-model/churn", aliases=["staging"])
        assert isinstance(linked, depot.LinkedArtifact)
        assert (linked.version, sorted(linked.aliases)) == ("v0", ["latest", "staging"])
        assert linked.qualified_name == "acme/wandb-registry-model/churn:v0"
        assert linked.source_version == "team-a/p/churn:v0"
        # Idempotent, and the Depot spelling names the same collection.
        again = a.link("acme/registry/model/churn", aliases=["prod"])
        assert again.version == "v0" and "prod" in again.aliases
        b = run.log_artifact(_model(tmp_path, b"two")).wait()
        assert b.link("acme/registry/model/churn").version == "v1"
        ds = run.log_artifact(_model(tmp_path, b"d", name="data", type_="dataset")).wait()
        with pytest.raises(depot.TypeMismatchError, match="accepts model"):
            ds.link("acme/wandb-registry-model/churn")

    api = depot.Api(server.address, sdk_world["bob"].key)
    for path, version, source in (
        ("acme/wandb-registry-model/churn:latest", "v1", "team-a/p/churn:v1"),
        ("acme/registry/model/churn:prod", "v0", "team-a/p/churn:v0"),
        ("acme/wandb-registry-model/churn:v0", "v0", "team-a/p/churn:v0"),
        ("acme/wandb-registry-model/churn", "v1", "team-a/p/churn:v1"),
    ):
        got = api.artifact(path)
        assert (got.version, got.source_version) == (version, source), path
    with depot.init(entity="team-a", project="p", job_type="eval", **kw) as run:
        used = run.use_artifact("acme/wandb-registry-model/churn:staging")
        assert used.version == "v0" and used.digest == a.digest
        out = used.download(tmp_path / "dl")
        assert (out / "weights.bin").read_bytes() == b"one"
    with pytest.raises(depot.NotFoundError):
        api.artifact("acme/wandb-registry-model/churn:nope")
    linked.unlink()  # v0, which had `staging` and `prod`
    with pytest.raises(depot.NotFoundError):
        api.artifact("acme/wandb-registry-model/churn:prod")
    assert api.artifact("acme/wandb-registry-model/churn").version == "v1"
