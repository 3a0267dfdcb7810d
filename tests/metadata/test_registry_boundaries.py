"""A registry role reads linked versions but does not re-publish them, and
leaving an org ends every access that came with it (issue 8: same class as
item 1, found by trying the fixes as an attacker would)."""

from __future__ import annotations

import grpc
from support.world import PROJECT, World, code, log_version, rid

from depot.metadata.v1 import metadata_pb2 as pb

VA = f"{PROJECT}/artifacts/va/versions/v0"
LINKED = "entities/acme/registries/model/collections/published/versions/v0"


def _publish(world: World) -> None:
    bob = world["bob"]
    world.member("acme", "bob", "member")
    world.admin.SetRegistryMember(
        pb.SetRegistryMemberRequest(registry="entities/acme/registries/model", user="entities/bob", role="member")
    )
    log_version(bob, PROJECT, "va", "", b"team a secret")
    bob.LinkArtifactVersion(
        pb.LinkArtifactVersionRequest(version=VA, target="entities/acme/registries/model/collections/published")
    )


def test_a_registry_reader_cannot_relink_a_version_into_another_org(world: World) -> None:
    _publish(world)
    # mallory: a viewer of acme (so a reader of its org-visible registries)
    # and a registry member in another org, with no role on team-a.
    mallory = world["mallory"]
    world.member("acme", "mallory", "viewer")
    world.admin.CreateEntity(pb.CreateEntityRequest(entity_id="other", entity=pb.Entity(kind="org")))
    world.member("other", "mallory", "admin")
    assert mallory.GetArtifactVersion(pb.GetArtifactVersionRequest(name=LINKED)).index == 0

    def relink(version: str) -> None:
        mallory.LinkArtifactVersion(
            pb.LinkArtifactVersionRequest(
                version=version, target="entities/other/registries/model/collections/leak", request_id=rid()
            )
        )

    assert code(lambda: relink(VA)) == grpc.StatusCode.PERMISSION_DENIED
    # Through the link name the registry check alone passed before the fix.
    assert code(lambda: relink(LINKED)) == grpc.StatusCode.PERMISSION_DENIED
    # Nothing was linked: the target collection was never even created.
    leak = pb.ListLinksRequest(parent="entities/other/registries/model/collections/leak")
    assert code(lambda: world.admin.ListLinks(leak)) == grpc.StatusCode.NOT_FOUND


def test_a_team_member_may_still_relink_between_registries(world: World) -> None:
    _publish(world)
    world.admin.CreateRegistry(
        pb.CreateRegistryRequest(
            parent="entities/acme", registry_id="staging", registry=pb.Registry(accepted_types=["model"])
        )
    )
    world.admin.SetRegistryMember(
        pb.SetRegistryMemberRequest(registry="entities/acme/registries/staging", user="entities/bob", role="member")
    )
    link = world["bob"].LinkArtifactVersion(
        pb.LinkArtifactVersionRequest(version=LINKED, target="entities/acme/registries/staging/collections/c")
    )
    assert link.version.name.endswith("/artifacts/va/versions/v0")


def test_leaving_the_org_ends_team_and_registry_access(world: World) -> None:
    _publish(world)
    carol = world["carol"]  # viewer of team-a
    world.member("acme", "carol", "member")
    world.admin.SetRegistryMember(
        pb.SetRegistryMemberRequest(registry="entities/acme/registries/model", user="entities/carol", role="viewer")
    )
    assert carol.GetArtifactVersion(pb.GetArtifactVersionRequest(name=VA)).index == 0
    world.admin.RemoveMember(pb.RemoveMemberRequest(entity="entities/acme", user="entities/carol"))
    for name in (VA, LINKED):
        assert code(lambda n=name: carol.GetArtifactVersion(pb.GetArtifactVersionRequest(name=n))) in (
            grpc.StatusCode.PERMISSION_DENIED,
            grpc.StatusCode.NOT_FOUND,
        )
    members = world.admin.ListMembers(pb.ListMembersRequest(entity="entities/team-a"))
    assert "entities/carol" not in {m.user for m in members.members}
    # team-a's admin can no longer pull carol back in: she is outside the org.
    alice = world["alice"]
    set_back = lambda: alice.SetMember(  # noqa: E731
        pb.SetMemberRequest(entity="entities/team-a", user="entities/carol", role="viewer")
    )
    assert code(set_back) == grpc.StatusCode.PERMISSION_DENIED
