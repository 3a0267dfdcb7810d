"""DeleteArtifactVersion and UndeleteArtifactVersion (issue 12, item 1) on a real server.

A deleted version must be gone from every read at once, keep its row until
purge_time (delete time + DEPOT_GRACE_PERIOD_S, an hour here), and come back
on undelete with the aliases nobody took meanwhile.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import asyncpg
import grpc
import pytest
from support.entities import create_team
from support.servers import ServerThread, make_config
from support.world import COLL, PROJECT, Meta, World, code, log_version, rid

from depot.metadata.v1 import metadata_pb2 as pb
from depot.services.metadata.db import create_pool
from depot.services.metadata.deletion import delete_versions

GRACE_S = 3600
MODELS = "entities/acme/registries/model"


@pytest.fixture
def server(tmp_path: Path, database_url: str) -> Iterator[ServerThread]:
    """The conftest's server, with a grace period of an hour."""
    cfg = make_config(
        tmp_path / "depot-data",
        database_url,
        (tmp_path / "blobs").as_uri(),
        DEPOT_GRACE_PERIOD_S=str(GRACE_S),
    )
    srv = ServerThread(cfg).start()
    create_team(srv.address, srv.admin_key, "team")
    yield srv
    srv.stop()


def _name(ref: str, coll: str = COLL) -> str:
    return f"{coll}/versions/{ref}"


def _delete(m: Meta, ref: str, *, delete_aliases: bool = False, request_id: str = "") -> pb.ArtifactVersion:
    return m.DeleteArtifactVersion(
        pb.DeleteArtifactVersionRequest(name=_name(ref), delete_aliases=delete_aliases, request_id=request_id)
    )


def _undelete(m: Meta, ref: str, request_id: str = "") -> pb.UndeleteArtifactVersionResponse:
    return m.UndeleteArtifactVersion(pb.UndeleteArtifactVersionRequest(name=_name(ref), request_id=request_id))


def _error(fn: Callable[[], object]) -> grpc.RpcError:
    try:
        fn()
    except grpc.RpcError as e:
        return e
    raise AssertionError("the call succeeded")


def _get(m: Meta, ref: str) -> pb.ArtifactVersion:
    return m.GetArtifactVersion(pb.GetArtifactVersionRequest(name=_name(ref)))


def _listed(m: Meta, *, show_deleted: bool = False) -> list[int]:
    req = pb.ListArtifactVersionsRequest(parent=COLL, show_deleted=show_deleted)
    return [v.index for v in m.ListArtifactVersions(req).versions]


def _log(m: Meta, n: int) -> list[pb.ArtifactVersion]:
    return [m.log_small("team-a", "p", "ds", {"f": bytes([i])}) for i in range(n)]


def test_delete_moves_latest_and_sets_times(world: World) -> None:
    bob = world["bob"]
    _log(bob, 3)
    out = _delete(bob, "v2")
    assert (out.index, out.state, out.delete_reason) == (2, "deleted", "user")
    assert out.purge_time.ToSeconds() - out.delete_time.ToSeconds() == GRACE_S
    assert list(out.aliases) == []
    assert _get(bob, "latest").index == 1
    assert _listed(bob) == [1, 0]
    # Deleting it again answers it as it is.
    again = _delete(bob, "v2")
    assert (again.state, again.delete_time) == ("deleted", out.delete_time)
    # Every version gone: no latest at all.
    _delete(bob, "v1")
    _delete(bob, "v0")
    assert code(lambda: _get(bob, "latest")) == grpc.StatusCode.NOT_FOUND
    assert _listed(bob) == []
    assert _listed(bob, show_deleted=True) == [2, 1, 0]


def test_custom_aliases_need_delete_aliases(world: World) -> None:
    bob = world["bob"]
    _log(bob, 2)
    bob.AddAliases(pb.AddAliasesRequest(version=_name("v0"), aliases=["prod", "best"]))
    e = _error(lambda: _delete(bob, "v0"))
    assert e.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "best, prod" in (e.details() or "") and "delete_aliases" in (e.details() or "")
    assert _get(bob, "prod").index == 0  # nothing happened
    # `latest` alone needs nothing; by alias name too.
    _delete(bob, "latest")
    assert code(lambda: _get(bob, "v1")) == grpc.StatusCode.NOT_FOUND
    out = _delete(bob, "prod", delete_aliases=True)
    assert out.index == 0 and out.state == "deleted"
    assert code(lambda: _get(bob, "prod")) == grpc.StatusCode.NOT_FOUND
    assert list(bob.ListAliases(pb.ListAliasesRequest(parent=COLL)).aliases) == []


def test_linked_version_is_refused_naming_the_links(world: World) -> None:
    bob = world["bob"]
    bob.log("team-a", "p", "m", {"w": b"0"}, type_="model")
    world.member("acme", "bob", "member")
    world.admin.SetRegistryMember(pb.SetRegistryMemberRequest(registry=MODELS, user="entities/bob", role="member"))
    src = f"{PROJECT}/artifacts/m/versions/v0"
    link = bob.LinkArtifactVersion(pb.LinkArtifactVersionRequest(version=src, target=f"{MODELS}/collections/prod"))
    for name in (src, link.name):
        e = _error(lambda name=name: bob.DeleteArtifactVersion(pb.DeleteArtifactVersionRequest(name=name)))
        assert e.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert f"{MODELS}/collections/prod/versions/v0" in (e.details() or "") and "unlink" in (e.details() or "")
    # Unlinked, it goes.
    bob.UnlinkArtifactVersion(pb.UnlinkArtifactVersionRequest(name=link.name))
    out = bob.DeleteArtifactVersion(pb.DeleteArtifactVersionRequest(name=src))
    assert out.state == "deleted"
    # And a deleted version cannot be linked.
    req = pb.LinkArtifactVersionRequest(version=src, target=f"{MODELS}/collections/prod")
    assert code(lambda: bob.LinkArtifactVersion(req)) == grpc.StatusCode.NOT_FOUND


def test_authorized_like_every_write(world: World) -> None:
    bob, carol, dave, alice = world["bob"], world["carol"], world["dave"], world["alice"]
    _log(bob, 2)
    for who in (carol, dave, world["mallory"]):
        assert code(lambda who=who: _delete(who, "v1")) == grpc.StatusCode.PERMISSION_DENIED
    assert _get(bob, "latest").index == 1
    _delete(alice, "v1")
    for who in (carol, dave):
        assert code(lambda who=who: _undelete(who, "v1")) == grpc.StatusCode.PERMISSION_DENIED
        req = pb.ListArtifactVersionsRequest(parent=COLL, show_deleted=True)
        assert code(lambda who=who, req=req: who.ListArtifactVersions(req)) == grpc.StatusCode.PERMISSION_DENIED
    # A viewer sees it gone, like everyone.
    assert code(lambda: _get(carol, "v1")) == grpc.StatusCode.NOT_FOUND
    assert _undelete(bob, "v1").version.state == "committed"


def test_idempotent_under_request_id(world: World) -> None:
    bob = world["bob"]
    _log(bob, 2)
    r = rid()
    first = _delete(bob, "v1", request_id=r)
    _undelete(bob, "v1")
    # The retry answers the first call's result and deletes nothing again.
    assert _delete(bob, "v1", request_id=r) == first
    assert _get(bob, "v1").state == "committed"
    # The same id for another request is refused.
    assert code(lambda: _delete(bob, "v0", request_id=r)) == grpc.StatusCode.INVALID_ARGUMENT
    u = rid()
    _delete(bob, "v1")
    restored = _undelete(bob, "v1", request_id=u)
    _delete(bob, "v1")
    assert _undelete(bob, "v1", request_id=u) == restored
    assert code(lambda: _get(bob, "v1")) == grpc.StatusCode.NOT_FOUND


def test_undelete_restores_aliases_nobody_took(world: World) -> None:
    bob = world["bob"]
    _log(bob, 3)
    bob.AddAliases(pb.AddAliasesRequest(version=_name("v2"), aliases=["prod", "best"]))
    _delete(bob, "v2", delete_aliases=True)
    assert _get(bob, "latest").index == 1
    # prod moves to v0 meanwhile; best stays free.
    bob.AddAliases(pb.AddAliasesRequest(version=_name("v0"), aliases=["prod"]))
    out = _undelete(bob, "v2")
    assert (list(out.restored_aliases), list(out.lost_aliases)) == (["best"], ["prod"])
    assert out.version.state == "committed" and not out.version.HasField("delete_time")
    # Newest live again: latest is back.
    assert sorted(out.version.aliases) == ["best", "latest"]
    assert _get(bob, "latest").index == 2 and _get(bob, "prod").index == 0
    assert _listed(bob) == [2, 1, 0] and _listed(bob, show_deleted=True) == []
    # Not the newest: latest stays where it is.
    _delete(bob, "v1")
    assert _undelete(bob, "v1").version.aliases == []
    assert _get(bob, "latest").index == 2
    # Undeleting a live version answers it as it is.
    again = _undelete(bob, "v1")
    assert (again.version.state, list(again.restored_aliases)) == ("committed", [])


def test_undelete_past_purge_time_or_purged(world: World, database_url: str) -> None:
    bob = world["bob"]
    _log(bob, 2)
    _delete(bob, "v1")

    async def age(sql: str) -> None:
        conn = await asyncpg.connect(database_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(age("UPDATE versions SET purge_time = now() - interval '1 second' WHERE index = 1"))
    e = _error(lambda: _undelete(bob, "v1"))
    assert e.code() == grpc.StatusCode.FAILED_PRECONDITION and "purge" in (e.details() or "")
    # Past its grace period it is no longer listed for undelete either.
    assert _listed(bob, show_deleted=True) == []
    asyncio.run(age("DELETE FROM versions WHERE index = 1"))
    e = _error(lambda: _undelete(bob, "v1"))
    assert e.code() == grpc.StatusCode.NOT_FOUND
    # Aliases never name a deleted version; registry names are refused too.
    for name in (_name("latest"), "entities/acme/registries/model/collections/c/versions/v0"):
        req = pb.UndeleteArtifactVersionRequest(name=name)
        assert code(lambda req=req: bob.UndeleteArtifactVersion(req)) == grpc.StatusCode.INVALID_ARGUMENT


def test_undelete_of_an_expired_version_keeps_it(world: World, database_url: str) -> None:
    """TTL expiry is a delete by the system: undelete brings the version back
    kept forever, or the next pass would expire it again."""
    bob = world["bob"]
    _log(bob, 1)

    async def expire() -> None:
        conn = await asyncpg.connect(database_url)
        try:
            await conn.execute(
                "UPDATE versions SET state = 'deleted', delete_time = now(), purge_time = now() + interval '1 day',"
                " delete_reason = 'ttl', ttl = interval '1 second' WHERE index = 0"
            )
            await conn.execute("DELETE FROM aliases")
        finally:
            await conn.close()

    asyncio.run(expire())
    listed = bob.ListArtifactVersions(pb.ListArtifactVersionsRequest(parent=COLL, show_deleted=True)).versions
    assert [(v.index, v.delete_reason) for v in listed] == [(0, "ttl")]
    out = _undelete(bob, "v0").version
    assert (out.state, out.ttl_mode, list(out.aliases)) == ("committed", pb.TTL_MODE_FOREVER, ["latest"])


def test_every_read_path_hides_a_deleted_version(world: World) -> None:
    bob, carol = world["bob"], world["carol"]
    run = f"{PROJECT}/runs/r"
    bob.CreateRun(pb.CreateRunRequest(parent=PROJECT, run_id="r"))
    bob.CreateRun(pb.CreateRunRequest(parent=PROJECT, run_id="user"))
    log_version(bob, PROJECT, "m", run, b"kept")
    gone = log_version(bob, PROJECT, "m", run, b"gone")
    bob.UseArtifactVersion(pb.UseArtifactVersionRequest(run=f"{PROJECT}/runs/user", version=gone.name))
    bob.AddAliases(pb.AddAliasesRequest(version=gone.name, aliases=["prod"]))
    coll = f"{PROJECT}/artifacts/m"
    bob.DeleteArtifactVersion(pb.DeleteArtifactVersionRequest(name=gone.name, delete_aliases=True))
    for m in (bob, carol):
        # By index, by alias, latest.
        for ref in ("v1", "prod"):
            req = pb.GetArtifactVersionRequest(name=f"{coll}/versions/{ref}")
            assert code(lambda m=m, req=req: m.GetArtifactVersion(req)) == grpc.StatusCode.NOT_FOUND
        assert m.GetArtifactVersion(pb.GetArtifactVersionRequest(name=f"{coll}/versions/latest")).index == 0
        # Listings: versions, aliases, collections' counts.
        assert [v.index for v in m.ListArtifactVersions(pb.ListArtifactVersionsRequest(parent=coll)).versions] == [0]
        aliases = m.ListAliases(pb.ListAliasesRequest(parent=coll)).aliases
        assert [(a.alias, a.index) for a in aliases] == [("latest", 0)]
        cols = m.ListCollections(pb.ListCollectionsRequest(parent=PROJECT)).collections
        assert [(c.name.rsplit("/", 1)[1], c.version_count) for c in cols] == [("m", 1)]
        # Lineage: downstream of its producer, upstream of its consumer, and as a start.
        down = m.WalkLineage(pb.WalkLineageRequest(start=run, direction=pb.DIRECTION_DOWNSTREAM, depth=3))
        assert gone.name not in [n.name for n in down.nodes]
        up = m.WalkLineage(
            pb.WalkLineageRequest(start=f"{PROJECT}/runs/user", direction=pb.DIRECTION_UPSTREAM, depth=3)
        )
        assert gone.name not in [n.name for n in up.nodes]
        walk = pb.WalkLineageRequest(start=gone.name, direction=pb.DIRECTION_BOTH)
        assert code(lambda m=m, walk=walk: m.WalkLineage(walk)) == grpc.StatusCode.NOT_FOUND
    # Writes through it are refused: aliases, use, TTL.
    add = pb.AddAliasesRequest(version=gone.name, aliases=["x"])
    assert code(lambda: bob.AddAliases(add)) == grpc.StatusCode.NOT_FOUND
    use = pb.UseArtifactVersionRequest(run=run, version=gone.name)
    assert code(lambda: bob.UseArtifactVersion(use)) == grpc.StatusCode.NOT_FOUND
    # Dedup never returns a deleted version: the same content logs anew.
    again = log_version(bob, PROJECT, "m", run, b"gone")
    assert again.index == 2 and again.state == "committed"
    assert bob.GetArtifactVersion(pb.GetArtifactVersionRequest(name=f"{coll}/versions/latest")).index == 2
    # Undelete now brings back a second live version with the same content.
    back = bob.UndeleteArtifactVersion(pb.UndeleteArtifactVersionRequest(name=gone.name))
    assert (back.version.digest, list(back.restored_aliases)) == (again.digest, ["prod"])


def test_concurrent_deletes_and_commits_do_not_deadlock(world: World, database_url: str) -> None:
    """Deletes over overlapping sets in opposite orders, with commits into the
    same collections: every call completes, and latest ends on the newest live version."""
    bob = world["bob"]
    for name in ("a", "b"):
        for i in range(6):
            bob.log_small("team-a", "p", name, {"f": bytes([i])})

    async def fetch_ids() -> list[int]:
        conn = await asyncpg.connect(database_url)
        try:
            return [r["id"] for r in await conn.fetch("SELECT id FROM versions ORDER BY id")]
        finally:
            await conn.close()

    ids = asyncio.run(fetch_ids())

    async def deletes() -> None:
        pool = await create_pool(database_url, min_size=2, max_size=2)
        try:

            async def delete(batch: list[int]) -> None:
                async with pool.acquire() as conn, conn.transaction():
                    await delete_versions(
                        conn, batch, delete_reason="user", delete_aliases=True, grace=timedelta(hours=1)
                    )

            await asyncio.gather(*(delete(b) for _ in range(5) for b in (ids[:8], ids[4:][::-1])))
        finally:
            await pool.close()

    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        commits = [ex.submit(bob.log_small, "team-a", "p", n, {"f": b"new-" + n.encode()}) for n in ("a", "b")]
        asyncio.run(deletes())
        newest = [c.result() for c in commits]
    for v in newest:
        assert bob.get(f"{v.collection}/versions/latest").index == v.index


# Sessions of this test's database waiting on a lock.
_WAITING = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"


@pytest.mark.parametrize("write", ["alias", "link"])
def test_a_write_racing_a_delete_never_points_at_the_deleted_version(
    world: World, database_url: str, write: str
) -> None:
    """An alias or a link added while a delete holds the version waits for it,
    then finds the version deleted (NOT_FOUND) instead of pointing at it."""
    bob = world["bob"]
    _log(bob, 1)
    world.member("acme", "bob", "member")
    world.admin.SetRegistryMember(pb.SetRegistryMemberRequest(registry=MODELS, user="entities/bob", role="member"))
    if write == "alias":
        req: object = pb.AddAliasesRequest(version=_name("v0"), aliases=["prod"])
        call = bob.AddAliases
    else:
        world.admin.CreateRegistry(
            pb.CreateRegistryRequest(parent="entities/acme", registry_id="data", registry=pb.Registry())
        )
        world.admin.SetRegistryMember(
            pb.SetRegistryMemberRequest(registry="entities/acme/registries/data", user="entities/bob", role="member")
        )
        req = pb.LinkArtifactVersionRequest(version=_name("v0"), target="entities/acme/registries/data/collections/c")
        call = bob.LinkArtifactVersion

    async def race() -> grpc.StatusCode:
        conn = await asyncpg.connect(database_url)
        try:
            async with conn.transaction():
                vid = await conn.fetchval("SELECT id FROM versions WHERE index = 0")
                await delete_versions(conn, [vid], delete_reason="user", delete_aliases=True, grace=timedelta(hours=1))
                loop = asyncio.get_running_loop()
                pending = loop.run_in_executor(None, code, lambda: call(req))
                # Commit only once the write waits on the version's lock.
                while not await conn.fetchval(_WAITING):
                    assert not pending.done(), "the write did not wait for the delete"
                    await asyncio.sleep(0.05)
            return await pending
        finally:
            await conn.close()

    assert asyncio.run(race()) == grpc.StatusCode.NOT_FOUND
    assert bob.ListAliases(pb.ListAliasesRequest(parent=COLL)).aliases == []
