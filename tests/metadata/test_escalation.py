"""Issue 8, item 1: membership never gives power over a user's credentials.

The chain that made an org admin a superuser: SetMember(org, admin) and then
CreateApiKey(user=admin). Every link is checked through the real stubs, for
the superuser and for a user of another org, for keys created, listed and
revoked, and for registry members.
"""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest
from support.world import Meta, World, code

from depot.metadata.v1 import metadata_pb2 as pb

DENIED = grpc.StatusCode.PERMISSION_DENIED


@pytest.fixture
def orgs(world: World) -> World:
    """`acme` with org admin `oscar` (no superuser power); `globex`, another
    org, with its user `gina` who holds a key."""
    world.user("oscar")
    world.member("acme", "oscar", "admin")
    world.admin.CreateEntity(pb.CreateEntityRequest(entity_id="globex", entity=pb.Entity(kind="org")))
    world.user("gina", org="entities/globex")
    return world


def _add(m: Meta, entity: str, user: str, role: str = "admin") -> pb.Member:
    return m.SetMember(pb.SetMemberRequest(entity=f"entities/{entity}", user=f"entities/{user}", role=role))


def _details(fn: Callable[[], object]) -> str:
    try:
        fn()
    except grpc.RpcError as e:
        return str(e.details())  # type: ignore[attr-defined]
    raise AssertionError("the call succeeded")


def test_org_admin_cannot_reach_the_superusers_keys(orgs: World) -> None:
    oscar = orgs["oscar"]
    # Step 1 of the old chain: pull the superuser into the org (or a team of it).
    assert code(lambda: _add(oscar, "acme", "admin")) == DENIED
    assert code(lambda: _add(oscar, "team-a", "admin", "viewer")) == DENIED
    # ... and the refusal does not tell which name is the superuser: it reads
    # as the one for a name that does not exist.
    assert _details(lambda: _add(oscar, "acme", "admin")) == _details(lambda: _add(oscar, "acme", "nobody")).replace(
        "'nobody'", "'admin'"
    )
    # Step 2, even had step 1 worked: mint, list or revoke the superuser's keys.
    mint = pb.CreateApiKeyRequest(user="entities/admin")
    assert code(lambda: oscar.CreateApiKey(mint)) == DENIED
    assert code(lambda: oscar.ListApiKeys(pb.ListApiKeysRequest(user="entities/admin"))) == DENIED
    admin_key_id = orgs.admin.key.split("_")[1]
    assert code(lambda: oscar.RevokeApiKey(pb.RevokeApiKeyRequest(id=admin_key_id))) == DENIED
    # The superuser in the org for real: still no power over it.
    _add(orgs.admin, "acme", "admin")
    assert code(lambda: oscar.CreateApiKey(mint)) == DENIED
    assert code(lambda: oscar.ListApiKeys(pb.ListApiKeysRequest(user="entities/admin"))) == DENIED
    assert code(lambda: oscar.RevokeApiKey(pb.RevokeApiKeyRequest(id=admin_key_id))) == DENIED
    demote = pb.SetMemberRequest(entity="entities/acme", user="entities/admin", role="viewer")
    assert code(lambda: oscar.SetMember(demote)) == DENIED
    remove = pb.RemoveMemberRequest(entity="entities/acme", user="entities/admin")
    assert code(lambda: oscar.RemoveMember(remove)) == DENIED
    # And the superuser's key still works, unrevoked.
    assert orgs.admin.GetCaller(pb.GetCallerRequest()).superuser


def test_org_admin_cannot_pull_in_another_orgs_user(orgs: World) -> None:
    oscar, gina = orgs["oscar"], orgs["gina"]
    assert code(lambda: _add(oscar, "acme", "gina", "member")) == DENIED
    assert code(lambda: _add(oscar, "team-a", "gina", "viewer")) == DENIED
    # A missing user answers the same: other tenants' user names do not leak.
    assert code(lambda: _add(oscar, "acme", "nobody-here", "member")) == DENIED
    for req in (pb.CreateApiKeyRequest(user="entities/gina"), pb.CreateApiKeyRequest(user="entities/nobody-here")):
        assert code(lambda: oscar.CreateApiKey(req)) == DENIED
    assert code(lambda: oscar.ListApiKeys(pb.ListApiKeysRequest(user="entities/gina"))) == DENIED
    gina_key = gina.key.split("_")[1]
    assert code(lambda: oscar.RevokeApiKey(pb.RevokeApiKeyRequest(id=gina_key))) == DENIED
    assert gina.GetCaller(pb.GetCallerRequest()).user == "gina"


def test_membership_never_grants_the_adders_power_over_keys(orgs: World) -> None:
    """Users the org admin legitimately holds, inside the org, keep their keys to themselves."""
    oscar = orgs["oscar"]
    # A user the org admin creates in the org, and one a superuser puts there.
    oscar.CreateEntity(pb.CreateEntityRequest(entity_id="zed", entity=pb.Entity(kind="user", org="entities/acme")))
    _add(orgs.admin, "acme", "bob", "member")
    bob = orgs["bob"]
    bob_key = bob.CreateApiKey(pb.CreateApiKeyRequest(description="mine"))
    for user in ("zed", "bob"):
        assert code(lambda: oscar.CreateApiKey(pb.CreateApiKeyRequest(user=f"entities/{user}"))) == DENIED
        assert code(lambda: oscar.ListApiKeys(pb.ListApiKeysRequest(user=f"entities/{user}"))) == DENIED
    assert code(lambda: oscar.RevokeApiKey(pb.RevokeApiKeyRequest(id=bob_key.id))) == DENIED
    # The org admin still runs the org: adds an org user to a team, changes roles.
    assert _add(oscar, "team-b", "bob", "viewer").role == "viewer"
    assert _add(oscar, "team-b", "zed", "member").role == "member"
    # The user and a superuser still manage the user's keys.
    assert [k.id for k in bob.ListApiKeys(pb.ListApiKeysRequest()).keys if k.description == "mine"] == [bob_key.id]
    assert orgs.admin.ListApiKeys(pb.ListApiKeysRequest(user="entities/bob")).keys
    assert bob.RevokeApiKey(pb.RevokeApiKeyRequest(id=bob_key.id)).HasField("revoke_time")


def test_registry_admins_follow_the_same_rules(orgs: World) -> None:
    oscar = orgs["oscar"]
    models = "entities/acme/registries/model"

    def reg_add(user: str, role: str = "admin") -> pb.Member:
        return oscar.SetRegistryMember(pb.SetRegistryMemberRequest(registry=models, user=f"entities/{user}", role=role))

    assert code(lambda: reg_add("admin")) == DENIED
    assert code(lambda: reg_add("gina", "viewer")) == DENIED
    assert code(lambda: reg_add("nobody-here", "viewer")) == DENIED
    assert reg_add("erin", "member").role == "member"  # erin is a user of acme
    orgs.admin.SetRegistryMember(pb.SetRegistryMemberRequest(registry=models, user="entities/admin", role="admin"))
    remove = pb.RemoveRegistryMemberRequest(registry=models, user="entities/admin")
    assert code(lambda: oscar.RemoveRegistryMember(remove)) == DENIED
    assert orgs.admin.RemoveRegistryMember(remove).role == "admin"
