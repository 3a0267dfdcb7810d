"""Version semantics under concurrency, dedup, aliases, access and pagination."""

from __future__ import annotations

import asyncio
import concurrent.futures

import asyncpg
import grpc
import pytest
from support.stubs import Stubs

from depot.metadata.v1 import metadata_pb2 as pb
from depot.services.metadata.access import Access
from depot.services.metadata.db import Database

COLL = "entities/team/projects/p/artifacts/ds"


@pytest.fixture
def stubs(channel, server) -> Stubs:
    return Stubs(channel, server.admin_key)


def test_32_concurrent_writers_get_32_gap_free_versions(stubs: Stubs) -> None:
    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        results = list(pool.map(lambda i: stubs.log("team", "p", "ds", {"f": f"{i}".encode()}), range(32)))
    assert sorted(v.index for v in results) == list(range(32))
    latest = stubs.get(f"{COLL}/versions/latest")
    assert latest.index == 31
    listed = stubs.artifacts.ListArtifactVersions(
        pb.ListArtifactVersionsRequest(parent=COLL, page_size=1000), metadata=stubs.md
    )
    assert [v.index for v in listed.versions] == list(range(31, -1, -1))
    assert [v.aliases for v in listed.versions if "latest" in v.aliases] == [["latest"]]


def test_identical_content_returns_existing_version_with_new_aliases(stubs: Stubs) -> None:
    a = stubs.log("team", "p", "ds", {"x": b"1", "y": b"2"})
    b = stubs.log("team", "p", "ds", {"y": b"2", "x": b"1"}, aliases=["prod"])
    assert (a.uid, a.index) == (b.uid, b.index)
    assert sorted(b.aliases) == ["latest", "prod"]
    c = stubs.log("team", "p", "ds", {"x": b"1", "y": b"3"})
    assert c.index == 1
    # `prod` stays where it was; `latest` moved.
    assert stubs.get(f"{COLL}/versions/prod").index == 0
    assert stubs.get(f"{COLL}/versions/latest").index == 1


def test_alias_moves_atomically(stubs: Stubs) -> None:
    stubs.log("team", "p", "ds", {"x": b"1"}, aliases=["best"])
    stubs.log("team", "p", "ds", {"x": b"2"}, aliases=["best"])
    v0 = stubs.get(f"{COLL}/versions/v0")
    assert "best" not in v0.aliases
    assert stubs.get(f"{COLL}/versions/best").index == 1


def test_pagination_with_opaque_tokens(stubs: Stubs) -> None:
    for i in range(5):
        stubs.log("team", "p", "ds", {"x": bytes([i])})
    seen, token = [], ""
    while True:
        page = stubs.artifacts.ListArtifactVersions(
            pb.ListArtifactVersionsRequest(parent=COLL, page_size=2, page_token=token),
            metadata=stubs.md,
        )
        seen += [v.index for v in page.versions]
        token = page.next_page_token
        if not token:
            break
    assert seen == [4, 3, 2, 1, 0]
    with pytest.raises(grpc.RpcError) as e:
        stubs.artifacts.ListArtifactVersions(
            pb.ListArtifactVersionsRequest(parent=COLL, page_token="zz"), metadata=stubs.md
        )
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]


def test_retried_commit_with_same_request_id_has_one_effect(stubs: Stubs) -> None:
    req = pb.CreateArtifactVersionRequest(
        parent="entities/team/projects/p", artifact="ds", type="dataset", request_id="req-1"
    )
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda _: stubs.artifacts.CreateArtifactVersion(req, metadata=stubs.md), range(4)))
    assert len({v.uid for v in got}) == 1


def test_other_users_cannot_read_or_write_a_team(stubs: Stubs, server, channel) -> None:
    stubs.log("team", "p", "ds", {"x": b"1"})

    async def make_user() -> str:
        pool = await asyncpg.create_pool(server.config.database_url, min_size=1, max_size=1)
        try:
            access = Access(Database(pool))
            uid = await access.create_user("mallory")
            return str(await access.create_key(uid))
        finally:
            await pool.close()

    mallory = Stubs(channel, asyncio.run(make_user()))
    for call in (
        lambda: mallory.get(f"{COLL}/versions/latest"),
        lambda: mallory.log("team", "p", "ds", {"x": b"evil"}),
        lambda: mallory.upload("team", b"evil"),
    ):
        with pytest.raises(grpc.RpcError) as e:
            call()
        assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED  # type: ignore[attr-defined]
    # Her own entity works.
    assert mallory.log("mallory", "p", "mine", {"x": b"1"}).index == 0
