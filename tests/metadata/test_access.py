"""Entities, members, API keys, and the authorization matrix (role x RPC family)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2
from support.world import COLL, OK, PROJECT, TEAM, Meta, World, code, rid

from depot.metadata.v1 import metadata_pb2 as pb

Call = Callable[[Meta], Any]


def _log(m: Meta) -> Any:
    return m.log(TEAM, "p", "ds", {"f": rid().encode()})


def _log_small(m: Meta) -> Any:
    return m.log_small(TEAM, "p", "ds", {"f": rid().encode()})


def _read_calls(w: World) -> list[Call]:
    return [
        lambda m: m.GetArtifactVersion(pb.GetArtifactVersionRequest(name=f"{COLL}/versions/latest")),
        lambda m: m.ListArtifactVersions(pb.ListArtifactVersionsRequest(parent=COLL)),
        lambda m: m.GetRun(pb.GetRunRequest(name=f"{PROJECT}/runs/r0")),
        lambda m: m.WalkLineage(pb.WalkLineageRequest(start=f"{COLL}/versions/v0", direction=pb.DIRECTION_BOTH)),
        lambda m: m.GetEntity(pb.GetEntityRequest(name=f"entities/{TEAM}")),
        lambda m: m.ListMembers(pb.ListMembersRequest(entity=f"entities/{TEAM}")),
        lambda m: m.ListAliases(pb.ListAliasesRequest(parent=COLL)),
        lambda m: m.ListCollections(pb.ListCollectionsRequest(parent=PROJECT)),
        lambda m: m.ListProjects(pb.ListProjectsRequest(parent=f"entities/{TEAM}")),
        lambda m: m.ListRuns(pb.ListRunsRequest(parent=PROJECT)),
    ]


def _write_calls(w: World) -> list[Call]:
    return [
        lambda m: m.CreateRun(pb.CreateRunRequest(parent=PROJECT, run_id=rid()[:12])),
        _log,
        _log_small,
        lambda m: m.UseArtifactVersion(
            pb.UseArtifactVersionRequest(run=f"{PROJECT}/runs/r0", version=f"{COLL}/versions/v0", request_id=rid())
        ),
        lambda m: m.FinishRun(pb.FinishRunRequest(name=f"{PROJECT}/runs/r1", request_id=rid())),
        lambda m: m.AddAliases(pb.AddAliasesRequest(version=f"{COLL}/versions/v0", aliases=["prod"])),
        lambda m: m.UpdateArtifactVersion(
            pb.UpdateArtifactVersionRequest(
                version=pb.ArtifactVersion(name=f"{COLL}/versions/v0", tags=["t"]),
                update_mask=field_mask_pb2.FieldMask(paths=["tags"]),
            )
        ),
    ]


def _admin_calls(w: World) -> list[Call]:
    def members(m: Meta) -> None:
        m.SetMember(pb.SetMemberRequest(entity=f"entities/{TEAM}", user="entities/erin", role="viewer"))
        m.RemoveMember(pb.RemoveMemberRequest(entity=f"entities/{TEAM}", user="entities/erin"))

    return [
        members,
        lambda m: m.UpdateEntitySettings(
            pb.UpdateEntitySettingsRequest(
                name=f"entities/{TEAM}",
                settings=pb.EntitySettings(ttl_policy=pb.TTL_POLICY_MEMBERS),
                update_mask=field_mask_pb2.FieldMask(paths=["ttl_policy"]),
            )
        ),
    ]


FAMILIES: dict[str, tuple[int, Callable[[World], list[Call]]]] = {
    "read": (1, _read_calls),
    "write": (2, _write_calls),
    "admin": (3, _admin_calls),
}
ROLES = {"alice": 3, "bob": 2, "carol": 1, "dave": 0, "mallory": 0}


@pytest.fixture
def seeded(world: World) -> World:
    _log(world.admin)
    for r in ("r0", "r1"):
        world.admin.CreateRun(pb.CreateRunRequest(parent=PROJECT, run_id=r))
    return world


@pytest.mark.parametrize("user", [*ROLES, None])
def test_authorization_matrix(seeded: World, channel: grpc.Channel, user: str | None) -> None:
    caller = seeded[user] if user else Meta(channel, "dpt_nope_nope")
    level = ROLES.get(user or "", 0)
    failures = []
    for family, (need, calls) in FAMILIES.items():
        for i, call in enumerate(calls(seeded)):
            got = code(lambda: call(caller))
            if user is None:
                want = grpc.StatusCode.UNAUTHENTICATED
            else:
                want = OK if level >= need else grpc.StatusCode.PERMISSION_DENIED
            if got != want:
                failures.append(f"{family}[{i}]: {got} != {want}")
    assert not failures, failures


def test_no_key_is_unauthenticated(channel: grpc.Channel, server) -> None:
    from depot.metadata.v1 import metadata_pb2_grpc

    stub = metadata_pb2_grpc.AccessServiceStub(channel)
    assert code(lambda: stub.GetCaller(pb.GetCallerRequest())) == grpc.StatusCode.UNAUTHENTICATED


def test_create_entities_rules(world: World) -> None:
    alice, bob = world["alice"], world["bob"]
    # Only superusers create orgs or anything outside an org.
    for kind in ("org", "team", "user"):
        req = pb.CreateEntityRequest(entity_id=f"x-{kind}", entity=pb.Entity(kind=kind))
        assert code(lambda: alice.CreateEntity(req)) == grpc.StatusCode.PERMISSION_DENIED
    # An org admin creates teams and users in the org; the creator administers the team.
    world.member("acme", "alice", "admin")
    team = alice.CreateEntity(
        pb.CreateEntityRequest(entity_id="ml", entity=pb.Entity(kind="team", org="entities/acme"))
    )
    assert (team.kind, team.org, team.caller_role) == ("team", "entities/acme", "admin")
    assert alice.GetEntity(pb.GetEntityRequest(name="entities/ml")).caller_role == "admin"
    alice.CreateEntity(pb.CreateEntityRequest(entity_id="zed", entity=pb.Entity(kind="user", org="entities/acme")))
    # ... but not that user's keys: only the user and a superuser manage them.
    zed_key = pb.CreateApiKeyRequest(user="entities/zed")
    assert code(lambda: alice.CreateApiKey(zed_key)) == grpc.StatusCode.PERMISSION_DENIED
    key = world.admin.CreateApiKey(zed_key).key
    assert Meta(world.channel, key).GetCaller(pb.GetCallerRequest()).user == "zed"
    # A plain org member may not.
    world.member("acme", "bob", "member")
    req = pb.CreateEntityRequest(entity_id="nope", entity=pb.Entity(kind="team", org="entities/acme"))
    assert code(lambda: bob.CreateEntity(req)) == grpc.StatusCode.PERMISSION_DENIED
    # Org admins administer the org's teams without a membership there.
    assert alice.GetEntity(pb.GetEntityRequest(name="entities/team-b")).caller_role == "admin"
    # Duplicates and bad kinds.
    dup = pb.CreateEntityRequest(entity_id="ml", entity=pb.Entity(kind="team"))
    assert code(lambda: world.admin.CreateEntity(dup)) == grpc.StatusCode.ALREADY_EXISTS
    bad = pb.CreateEntityRequest(entity_id="q", entity=pb.Entity(kind="robot"))
    assert code(lambda: world.admin.CreateEntity(bad)) == grpc.StatusCode.INVALID_ARGUMENT


def test_roles_change_and_the_last_admin_stays(world: World) -> None:
    alice = world["alice"]
    carol = world["carol"]
    team = f"entities/{TEAM}"
    assert code(lambda: _log(carol)) == grpc.StatusCode.PERMISSION_DENIED
    alice.SetMember(pb.SetMemberRequest(entity=team, user="entities/carol", role="member"))
    assert code(lambda: _log(carol)) == OK
    alice.RemoveMember(pb.RemoveMemberRequest(entity=team, user="entities/carol"))
    assert code(lambda: _log(carol)) == grpc.StatusCode.PERMISSION_DENIED
    # alice is the only admin: she cannot demote or remove herself.
    demote = pb.SetMemberRequest(entity=team, user="entities/alice", role="member")
    assert code(lambda: alice.SetMember(demote)) == grpc.StatusCode.FAILED_PRECONDITION
    leave = pb.RemoveMemberRequest(entity=team, user="entities/alice")
    assert code(lambda: alice.RemoveMember(leave)) == grpc.StatusCode.FAILED_PRECONDITION
    bad = pb.SetMemberRequest(entity=team, user="entities/bob", role="owner")
    assert code(lambda: alice.SetMember(bad)) == grpc.StatusCode.INVALID_ARGUMENT
    not_user = pb.SetMemberRequest(entity=team, user="entities/team-b", role="viewer")
    assert code(lambda: world.admin.SetMember(not_user)) == grpc.StatusCode.FAILED_PRECONDITION
    # Below superuser, a non-user answers like a missing user: no name leaks.
    assert code(lambda: alice.SetMember(not_user)) == grpc.StatusCode.PERMISSION_DENIED
    members = alice.ListMembers(pb.ListMembersRequest(entity=team, page_size=1))
    assert len(members.members) == 1 and members.next_page_token


def test_api_keys_shown_once_stored_hashed_revocable(world: World, server) -> None:
    bob, carol = world["bob"], world["carol"]
    created = bob.CreateApiKey(pb.CreateApiKeyRequest(description="ci", request_id="k1"))
    assert created.key.startswith(f"dpt_{created.id}_") and created.user == "entities/bob"
    # A retry returns the same key's id without its secret (shown once); no
    # second key is made.
    again = bob.CreateApiKey(pb.CreateApiKeyRequest(description="ci", request_id="k1"))
    assert (again.id, again.key) == (created.id, "")
    listed = bob.ListApiKeys(pb.ListApiKeysRequest())
    assert [k.id for k in listed.keys if k.description == "ci"] == [created.id]
    assert all(not k.key for k in listed.keys)
    new = Meta(world.channel, created.key)
    assert new.GetCaller(pb.GetCallerRequest()).user == "bob"
    # Others may not create or revoke bob's keys; bob may revoke his own.
    other = pb.CreateApiKeyRequest(user="entities/bob")
    assert code(lambda: carol.CreateApiKey(other)) == grpc.StatusCode.PERMISSION_DENIED
    revoke = pb.RevokeApiKeyRequest(id=created.id)
    assert code(lambda: carol.RevokeApiKey(revoke)) == grpc.StatusCode.PERMISSION_DENIED
    assert code(lambda: carol.ListApiKeys(pb.ListApiKeysRequest(user="entities/bob"))) == (
        grpc.StatusCode.PERMISSION_DENIED
    )
    assert bob.RevokeApiKey(revoke).HasField("revoke_time")
    assert code(lambda: new.GetCaller(pb.GetCallerRequest())) == grpc.StatusCode.UNAUTHENTICATED

    import asyncio

    import asyncpg

    async def stored() -> bytes:
        conn = await asyncpg.connect(server.config.database_url)
        try:
            rows = await conn.fetch("SELECT secret_sha256 FROM api_keys WHERE id = $1", created.id)
            dump = await conn.fetchval("SELECT string_agg(response::text, '') FROM idempotency")
        finally:
            await conn.close()
        assert created.key.split("_", 2)[2] not in (dump or "")
        return bytes(rows[0][0])

    import hashlib

    assert asyncio.run(stored()) == hashlib.sha256(created.key.split("_", 2)[2].encode()).digest()


def test_list_entities_shows_only_mine(world: World) -> None:
    names = [e.name for e in world["bob"].ListEntities(pb.ListEntitiesRequest()).entities]
    assert names == ["entities/bob", f"entities/{TEAM}"]
    seen, token = [], ""
    while True:
        page = world.admin.ListEntities(pb.ListEntitiesRequest(page_size=3, page_token=token))
        seen += [e.name for e in page.entities]
        token = page.next_page_token
        if not token:
            break
    assert len(seen) == len(set(seen)) >= 10
    orgs = world.admin.ListEntities(pb.ListEntitiesRequest(kind="org")).entities
    assert [e.name for e in orgs] == ["entities/acme"]
