"""A request_id names one request, and a replay re-checks access (issue 8, item 7)."""

from __future__ import annotations

import asyncio

import asyncpg
import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from support.world import COLL, PROJECT, Meta, World, code, rid

from depot.metadata.v1 import metadata_pb2 as pb

MODELS = "entities/acme/registries/model"


def _refusal(fn: object) -> tuple[grpc.StatusCode, str, str]:
    """(code, ErrorInfo reason, field) of the error ``fn()`` raises."""
    with pytest.raises(grpc.RpcError) as e:
        fn()  # type: ignore[operator]
    trailers = dict(e.value.trailing_metadata())  # type: ignore[attr-defined]
    info = error_details_pb2.ErrorInfo()
    status_pb2.Status.FromString(trailers["grpc-status-details-bin"]).details[0].Unpack(info)
    return e.value.code(), info.reason, info.metadata["field"]  # type: ignore[attr-defined]


REUSED = (grpc.StatusCode.INVALID_ARGUMENT, "REQUEST_ID_REUSED", "request_id")


def _versions(m: Meta, parent: str) -> list[str]:
    return [v.name for v in m.ListArtifactVersions(pb.ListArtifactVersionsRequest(parent=parent)).versions]


def test_logging_another_artifact_under_a_used_request_id_is_refused(world: World) -> None:
    bob = world["bob"]
    same = rid()
    a = bob.log_small("team-a", "p", "a", {"f": b"A"}, request_id=same)
    assert bob.log_small("team-a", "p", "a", {"f": b"A"}, request_id=same) == a
    assert _refusal(lambda: bob.log_small("team-a", "p", "b", {"f": b"B"}, request_id=same)) == REUSED
    # Nothing was created for B; A is unchanged and still answers its retry.
    assert _versions(bob, f"{PROJECT}/artifacts/a") == [a.name]
    cols = bob.ListCollections(pb.ListCollectionsRequest(parent=PROJECT)).collections
    assert [c.name.rsplit("/", 1)[1] for c in cols] == ["a"]
    assert bob.log_small("team-a", "p", "a", {"f": b"A"}, request_id=same) == a
    # The id is the caller's: another user may use the same one.
    assert world["alice"].log_small("team-a", "p", "b", {"f": b"B"}, request_id=same).name.endswith("/b/versions/v0")


def test_add_aliases_on_another_version_under_a_used_request_id_is_refused(world: World) -> None:
    bob = world["bob"]
    bob.log_small("team-a", "p", "ds", {"f": b"0"})
    bob.log_small("team-a", "p", "ds", {"f": b"1"})
    same = rid()

    def add(ref: str, alias: str) -> pb.ArtifactVersion:
        req = pb.AddAliasesRequest(version=f"{COLL}/versions/{ref}", aliases=[alias], request_id=same)
        return bob.AddAliases(req)

    assert "best" in add("v0", "best").aliases
    assert _refusal(lambda: add("v1", "best")) == REUSED
    assert _refusal(lambda: add("v0", "other")) == REUSED
    got = bob.GetArtifactVersion(pb.GetArtifactVersionRequest(name=f"{COLL}/versions/best"))
    assert got.index == 0 and "other" not in got.aliases
    assert add("v0", "best").index == 0  # the same request still replays


def test_a_member_removed_since_does_not_get_the_stored_answer(world: World) -> None:
    bob = world["bob"]
    bob.log_small("team-a", "p", "ds", {"f": b"0"})
    req = pb.AddAliasesRequest(version=f"{COLL}/versions/v0", aliases=["best"], request_id=rid())
    bob.AddAliases(req)
    assert code(lambda: bob.AddAliases(req)) == grpc.StatusCode.OK
    world.admin.RemoveMember(pb.RemoveMemberRequest(entity="entities/team-a", user="entities/bob"))
    assert code(lambda: bob.AddAliases(req)) == grpc.StatusCode.PERMISSION_DENIED
    # Back as a viewer: the first call needed write access, a viewer still may not replay it.
    world.member("team-a", "bob", "viewer")
    assert code(lambda: bob.AddAliases(req)) == grpc.StatusCode.PERMISSION_DENIED
    world.member("team-a", "bob", "member")
    assert "best" in bob.AddAliases(req).aliases


def test_a_registry_member_removed_since_does_not_get_the_stored_link(world: World) -> None:
    bob = world["bob"]
    bob.log("team-a", "p", "m", {"w": b"0"}, type_="model")
    world.member("acme", "bob", "member")
    world.admin.SetRegistryMember(pb.SetRegistryMemberRequest(registry=MODELS, user="entities/bob", role="member"))
    req = pb.LinkArtifactVersionRequest(
        version=f"{PROJECT}/artifacts/m/versions/v0", target=f"{MODELS}/collections/c", request_id=rid()
    )
    first = bob.LinkArtifactVersion(req)
    assert bob.LinkArtifactVersion(req) == first
    # Still an org member (so a registry viewer), no longer allowed to link.
    world.admin.RemoveRegistryMember(pb.RemoveRegistryMemberRequest(registry=MODELS, user="entities/bob"))
    assert code(lambda: bob.LinkArtifactVersion(req)) == grpc.StatusCode.PERMISSION_DENIED


def test_create_api_key_request_id_is_bound_to_its_request(world: World) -> None:
    bob = world["bob"]
    same = rid()
    first = bob.CreateApiKey(pb.CreateApiKeyRequest(user="entities/bob", description="ci", request_id=same))
    retry = bob.CreateApiKey(pb.CreateApiKeyRequest(user="entities/bob", description="ci", request_id=same))
    assert retry.id == first.id
    other = pb.CreateApiKeyRequest(user="entities/bob", description="laptop", request_id=same)
    assert _refusal(lambda: bob.CreateApiKey(other)) == REUSED
    keys = bob.ListApiKeys(pb.ListApiKeysRequest(user="entities/bob")).keys
    assert [k.description for k in keys].count("laptop") == 0


def test_records_from_before_fingerprints_still_replay(world: World, server) -> None:
    """Rows written before migration 0003 have no fingerprint and no grants."""
    bob = world["bob"]
    bob.CreateRun(pb.CreateRunRequest(parent=PROJECT, run_id="r"))
    stored = pb.Run(name=f"{PROJECT}/runs/r", state="finished")
    bob_id = asyncio.run(_legacy_row(server.config.database_url, "bob", "FinishRun", "old-id", stored))
    assert bob_id
    got = bob.FinishRun(pb.FinishRunRequest(name=f"{PROJECT}/runs/r", request_id="old-id"))
    assert got == stored
    # Answered from the record: the run itself was not finished.
    assert bob.GetRun(pb.GetRunRequest(name=f"{PROJECT}/runs/r")).state == "running"


async def _legacy_row(url: str, user: str, method: str, request_id: str, response: pb.Run) -> int:
    conn = await asyncpg.connect(url)
    try:
        uid = await conn.fetchval("SELECT id FROM entities WHERE name = $1", user)
        await conn.execute(
            "INSERT INTO idempotency (caller_id, method, request_id, response) VALUES ($1, $2, $3, $4)",
            uid,
            method,
            request_id,
            response.SerializeToString(),
        )
        return int(uid)
    finally:
        await conn.close()


def test_a_retried_self_demotion_answers_as_the_first_call_did(world: World) -> None:
    # alice, admin of team-a, promotes carol, makes bob admin, then demotes
    # herself: her retry of the demotion must not be refused for the access
    # that very call removed.
    alice = world["alice"]
    promote = pb.SetMemberRequest(entity="entities/team-a", user="entities/carol", role="member", request_id=rid())
    alice.SetMember(promote)
    world.member("team-a", "bob", "admin")
    demote = pb.SetMemberRequest(entity="entities/team-a", user="entities/alice", role="viewer", request_id=rid())
    first = alice.SetMember(demote)
    assert alice.SetMember(demote) == first
    # A replay of a change to someone else's membership is still re-checked.
    assert code(lambda: alice.SetMember(promote)) == grpc.StatusCode.PERMISSION_DENIED
    # Leaving the team: the same.
    leave = pb.RemoveMemberRequest(entity="entities/team-a", user="entities/alice", request_id=rid())
    world.member("team-a", "alice", "admin")
    first = alice.RemoveMember(leave)
    assert alice.RemoveMember(leave) == first
