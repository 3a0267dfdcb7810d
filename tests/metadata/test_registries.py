"""Registries: core types, roles, idempotent links, link aliases, resolution, unlink."""

from __future__ import annotations

import grpc
import pytest
from support.world import OK, PROJECT, Meta, World, code

from depot.metadata.v1 import metadata_pb2 as pb

MODELS = "entities/acme/registries/model"


@pytest.fixture
def reg(world: World) -> World:
    """bob logs model `m` (v0, v1) and dataset `ds` in team-a; he may link into `model`."""
    bob = world["bob"]
    bob.log("team-a", "p", "m", {"w": b"0"}, type_="model")
    bob.log("team-a", "p", "m", {"w": b"1"}, type_="model")
    bob.log("team-a", "p", "ds", {"d": b"0"})
    world.member("acme", "bob", "member")
    world.member("acme", "mallory", "viewer")
    world.admin.SetRegistryMember(pb.SetRegistryMemberRequest(registry=MODELS, user="entities/bob", role="member"))
    return world


def _link(m: Meta, src: str, target: str, aliases: list[str] | None = None) -> pb.Link:
    return m.LinkArtifactVersion(
        pb.LinkArtifactVersionRequest(version=f"{PROJECT}/artifacts/{src}", target=target, aliases=aliases or [])
    )


def _get(m: Meta, name: str) -> pb.ArtifactVersion:
    return m.GetArtifactVersion(pb.GetArtifactVersionRequest(name=name))


def test_core_registries_exist_and_accept_only_their_type(reg: World) -> None:
    bob = reg["bob"]
    regs = bob.ListRegistries(pb.ListRegistriesRequest(parent="entities/acme")).registries
    assert [(r.name.rsplit("/", 1)[1], list(r.accepted_types), r.core) for r in regs] == [
        ("dataset", ["dataset"], True),
        ("model", ["model"], True),
    ]
    assert [r.caller_role for r in regs] == ["viewer", "member"]
    e = None
    try:
        _link(bob, "ds/versions/v0", f"{MODELS}/collections/x")
    except grpc.RpcError as err:
        e = err
    assert e is not None and e.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "accepts model" in (e.details() or "")
    # Nothing was created by the refused link.
    cols = bob.ListRegistryCollections(pb.ListRegistryCollectionsRequest(parent=MODELS))
    assert list(cols.collections) == []


def test_link_is_idempotent_gets_own_index_and_aliases(reg: World) -> None:
    bob = reg["bob"]
    target = f"{MODELS}/collections/prod-model"
    first = _link(bob, "m/versions/v0", target, ["candidate"])
    assert (first.index, sorted(first.aliases)) == (0, ["candidate", "latest"])
    assert first.version.name == f"{PROJECT}/artifacts/m/versions/v0" and first.version.linked
    assert not first.version.HasField("expire_time")
    again = _link(bob, "m/versions/v0", target, ["reviewed"])
    assert (again.index, sorted(again.aliases)) == (0, ["candidate", "latest", "reviewed"])
    second = _link(bob, "m/versions/latest", target, ["candidate"])
    assert second.index == 1 and sorted(second.aliases) == ["candidate", "latest"]
    # Registry aliases move like artifact aliases, and never touch the source's.
    bob.AddAliases(pb.AddAliasesRequest(version=f"{target}/versions/v0", aliases=["champion"]))
    bob.AddAliases(pb.AddAliasesRequest(version=f"{target}/versions/latest", aliases=["champion"]))
    got = _get(bob, f"{target}/versions/champion")
    assert (got.link.index, got.link.name, got.index) == (1, f"{target}/versions/v1", 1)
    assert got.aliases == ["latest"] and sorted(got.link.aliases) == ["candidate", "champion", "latest"]
    assert _get(bob, f"{target}/versions/v0").link.aliases == ["reviewed"]
    links = bob.ListLinks(pb.ListLinksRequest(parent=target, page_size=1))
    assert [x.index for x in links.links] == [1] and links.next_page_token
    aliases = bob.ListAliases(pb.ListAliasesRequest(parent=target)).aliases
    assert [(a.alias, a.index) for a in aliases] == [("candidate", 1), ("champion", 1), ("latest", 1), ("reviewed", 0)]
    cols = bob.ListRegistryCollections(pb.ListRegistryCollectionsRequest(parent=MODELS))
    assert [(c.type, c.link_count) for c in cols.collections] == [("model", 2)]
    # Unlink v1: latest returns to v0; the index is not reused.
    gone = bob.UnlinkArtifactVersion(pb.UnlinkArtifactVersionRequest(name=f"{target}/versions/v1"))
    assert gone.index == 1
    assert _get(bob, f"{target}/versions/latest").link.index == 0
    assert code(lambda: _get(bob, f"{target}/versions/champion")) == grpc.StatusCode.NOT_FOUND
    assert _link(bob, "m/versions/v1", target).index == 2


def test_registry_roles(reg: World) -> None:
    bob, mallory, carol = reg["bob"], reg["mallory"], reg["carol"]
    target = f"{MODELS}/collections/prod-model"
    _link(bob, "m/versions/v0", target, ["prod"])
    # An org member may read an org-visible registry, even without a role on team-a ...
    assert _get(mallory, f"{target}/versions/prod").name == f"{PROJECT}/artifacts/m/versions/v0"
    src = f"{PROJECT}/artifacts/m/versions/v0"
    assert code(lambda: _get(mallory, src)) == grpc.StatusCode.PERMISSION_DENIED
    # ... but not link, move aliases or unlink.
    for call in (
        lambda: _link(mallory, "m/versions/v0", target),
        lambda: mallory.AddAliases(pb.AddAliasesRequest(version=f"{target}/versions/v0", aliases=["x"])),
        lambda: mallory.UnlinkArtifactVersion(pb.UnlinkArtifactVersionRequest(name=f"{target}/versions/v0")),
    ):
        assert code(call) == grpc.StatusCode.PERMISSION_DENIED
    # Outside the org: nothing.
    assert code(lambda: _get(carol, f"{target}/versions/prod")) == grpc.StatusCode.PERMISSION_DENIED
    lr = pb.ListRegistriesRequest(parent="entities/acme")
    assert code(lambda: carol.ListRegistries(lr)) == grpc.StatusCode.PERMISSION_DENIED
    # Linking needs read access to the source version.
    reg.admin.SetRegistryMember(pb.SetRegistryMemberRequest(registry=MODELS, user="entities/mallory", role="member"))
    assert code(lambda: _link(mallory, "m/versions/v0", target)) == grpc.StatusCode.PERMISSION_DENIED
    # Only registry admins manage registry members.
    req = pb.SetRegistryMemberRequest(registry=MODELS, user="entities/carol", role="viewer")
    assert code(lambda: bob.SetRegistryMember(req)) == grpc.StatusCode.PERMISSION_DENIED


def test_custom_registries(reg: World) -> None:
    admin, bob = reg.admin, reg["bob"]
    create = pb.CreateRegistryRequest(
        parent="entities/acme",
        registry_id="evals",
        registry=pb.Registry(description="anything", visibility="restricted"),
    )
    assert code(lambda: bob.CreateRegistry(create)) == grpc.StatusCode.PERMISSION_DENIED
    r = admin.CreateRegistry(create)
    assert (r.core, list(r.accepted_types), r.visibility) == (False, [], "restricted")
    assert code(lambda: admin.CreateRegistry(create)) == grpc.StatusCode.ALREADY_EXISTS
    # Restricted: org members without a registry role do not see it.
    names = [x.name for x in bob.ListRegistries(pb.ListRegistriesRequest(parent="entities/acme")).registries]
    assert "entities/acme/registries/evals" not in names
    admin.SetRegistryMember(
        pb.SetRegistryMemberRequest(registry="entities/acme/registries/evals", user="entities/bob", role="member")
    )
    target = "entities/acme/registries/evals/collections/mixed"
    assert _link(bob, "ds/versions/v0", target).index == 0
    e = None
    try:
        _link(bob, "m/versions/v0", target)
    except grpc.RpcError as err:
        e = err
    assert e is not None and e.code() == grpc.StatusCode.FAILED_PRECONDITION
    typed = pb.CreateRegistryRequest(
        parent="entities/acme", registry_id="tables", registry=pb.Registry(accepted_types=["table"])
    )
    assert list(admin.CreateRegistry(typed).accepted_types) == ["table"]
    team = pb.CreateRegistryRequest(parent="entities/team-a", registry_id="x")
    assert code(lambda: admin.CreateRegistry(team)) == grpc.StatusCode.FAILED_PRECONDITION
    assert code(lambda: _get(admin, "entities/acme/registries/nope/collections/c/versions/v0")) == (
        grpc.StatusCode.NOT_FOUND
    )


def test_use_through_registry_records_the_source_version(reg: World) -> None:
    bob = reg["bob"]
    target = f"{MODELS}/collections/prod-model"
    _link(bob, "m/versions/v1", target)
    bob.CreateRun(pb.CreateRunRequest(parent=PROJECT, run_id="eval"))
    used = bob.UseArtifactVersion(
        pb.UseArtifactVersionRequest(run=f"{PROJECT}/runs/eval", version=f"{target}/versions/latest")
    )
    assert used.index == 1 and used.link.index == 0
    lin = bob.WalkLineage(
        pb.WalkLineageRequest(start=f"{PROJECT}/artifacts/m/versions/v1", direction=pb.DIRECTION_DOWNSTREAM)
    )
    assert [n.run.name for n in lin.nodes] == [f"{PROJECT}/runs/eval"]
    assert code(lambda: _get(bob, f"{target}/versions/latest")) == OK


def test_registry_reader_downloads_linked_version_only(reg: World, server, tmp_path) -> None:
    """mallory reads the org's model registry but has no role on team-a."""
    import depot
    from depot.manifest.v1 import manifest_pb2 as mpb

    bob, mallory = reg["bob"], reg["mallory"]
    target = f"{MODELS}/collections/downloadable"
    _link(bob, "m/versions/v1", target, ["prod"])
    api = depot.Api(server.address, mallory.key)
    art = api.artifact("acme/wandb-registry-model/downloadable:prod")
    out = art.download(tmp_path / "out")
    assert (out / "w").read_bytes() == b"1"

    v0 = _get(bob, f"{PROJECT}/artifacts/m/versions/v0")
    v1 = _get(bob, f"{PROJECT}/artifacts/m/versions/v1")
    from support.stubs import b64_xxh

    # The unlinked v0's manifest, or a blob outside v1's manifest, stays closed to her.
    for req in (
        mpb.ReadManifestRequest(entity="team-a", manifest_id=v0.manifest_id),
        mpb.ReadBlobRequest(
            entity="team-a",
            digest=mpb.BlobDigest(algorithm="xxh3_128", digest=b64_xxh(b"0")),
            manifest_id=v1.manifest_id,
        ),
    ):
        method = mallory.man.ReadManifest if isinstance(req, mpb.ReadManifestRequest) else mallory.man.ReadBlob
        assert code(lambda: list(method(req, metadata=mallory.md))) == grpc.StatusCode.PERMISSION_DENIED
