"""DeleteArtifactVersions / GetDeleteOperation: bulk delete by filter as a long-running operation.

Against the real server (world fixture: alice admin, bob member, carol
viewer of team-a; dave of team-b), and, for the runner's resume after it is
stopped or dies, the domain's runner on the test's real database.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import grpc
import pytest
from google.protobuf import field_mask_pb2
from google.rpc import error_details_pb2, status_pb2
from support.world import COLL, PROJECT, Meta, World, code, log_version, rid

from depot.metadata.v1 import metadata_pb2 as pb
from depot.services.metadata import db
from depot.services.metadata.access import Access, Principal
from depot.services.metadata.bulk_delete import BulkDeletes, BulkFilter
from depot.services.metadata.projects import Projects

INVALID = grpc.StatusCode.INVALID_ARGUMENT
DENIED = grpc.StatusCode.PERMISSION_DENIED


def _wait(m: Meta, name: str) -> pb.DeleteOperation:
    """Follows an operation until it ends (the server's runner does the work)."""
    deadline = time.monotonic() + 60
    while True:
        op = m.GetDeleteOperation(pb.GetDeleteOperationRequest(name=name))
        if op.state != "running":
            return op
        assert time.monotonic() < deadline, f"operation still running: {op}"
        time.sleep(0.05)


def _live(m: Meta, parent: str = COLL) -> list[int]:
    page = m.ListArtifactVersions(pb.ListArtifactVersionsRequest(parent=parent, page_size=1000))
    return sorted(v.index for v in page.versions)


def _log(m: Meta, n: int, name: str = "ds") -> list[pb.ArtifactVersion]:
    run = f"{PROJECT}/runs/r"
    if code(lambda: m.GetRun(pb.GetRunRequest(name=run))) != grpc.StatusCode.OK:
        m.CreateRun(pb.CreateRunRequest(parent=PROJECT, run_id="r"))
    return [log_version(m, PROJECT, name, run, f"{name}-{i}".encode()) for i in range(n)]


def test_dry_run_counts_and_samples_and_deletes_nothing(world: World) -> None:
    bob = world["bob"]
    _log(bob, 25)
    op = bob.DeleteArtifactVersions(pb.DeleteArtifactVersionsRequest(parent=COLL, dry_run=True))
    assert (op.state, op.matched, op.name) == ("dry_run", 25, "")
    assert list(op.sample) == [f"{COLL}/versions/v{i}" for i in range(20)]
    assert len(_live(bob)) == 25


def test_deletes_every_version_of_a_collection(world: World) -> None:
    bob = world["bob"]
    _log(bob, 7)
    op = bob.DeleteArtifactVersions(pb.DeleteArtifactVersionsRequest(parent=COLL, request_id=rid()))
    assert op.name.startswith("operations/")
    done = _wait(bob, op.name)
    assert (done.state, done.matched, done.deleted, done.skipped_aliased, done.skipped_linked) == ("done", 7, 7, 0, 0)
    assert list(done.sample) == [f"{COLL}/versions/v{i}" for i in range(7)]
    assert _live(bob) == []
    # Deleted, not purged: restorable until purge_time.
    deleted = bob.ListArtifactVersions(pb.ListArtifactVersionsRequest(parent=COLL, show_deleted=True)).versions
    assert sorted(v.index for v in deleted) == list(range(7))
    assert all(v.delete_reason == "user" and v.HasField("purge_time") for v in deleted)


def test_aliased_and_linked_versions_are_skipped_and_counted(world: World) -> None:
    bob = world["bob"]
    v = _log(bob, 4)
    bob.AddAliases(pb.AddAliasesRequest(version=v[1].name, aliases=["best"], request_id=rid()))
    world.admin.LinkArtifactVersion(
        pb.LinkArtifactVersionRequest(version=v[2].name, target="entities/acme/registries/model/collections/m")
    )
    op = _wait(bob, bob.DeleteArtifactVersions(pb.DeleteArtifactVersionsRequest(parent=COLL, request_id=rid())).name)
    assert (op.matched, op.deleted, op.skipped_aliased, op.skipped_linked) == (4, 2, 1, 1)
    assert _live(bob) == [1, 2]
    # With delete_aliases the aliased one goes too; the linked one never does.
    op = _wait(
        bob,
        bob.DeleteArtifactVersions(
            pb.DeleteArtifactVersionsRequest(parent=COLL, delete_aliases=True, request_id=rid())
        ).name,
    )
    assert (op.matched, op.deleted, op.skipped_aliased, op.skipped_linked) == (2, 1, 0, 1)
    assert _live(bob) == [2]


def test_filters(world: World) -> None:
    bob = world["bob"]
    v = _log(bob, 6)
    _log(bob, 2, name="other")
    for i in (0, 1, 2):
        bob.UpdateArtifactVersion(
            pb.UpdateArtifactVersionRequest(
                version=pb.ArtifactVersion(name=v[i].name, tags=["old"], metadata_json=json.dumps({"split": i % 2})),
                update_mask=field_mask_pb2.FieldMask(paths=["tags", "metadata_json"]),
                request_id=rid(),
            )
        )
    bob.AddAliases(pb.AddAliasesRequest(version=v[0].name, aliases=["keep"], request_id=rid()))

    def matched(**kw: Any) -> list[str]:
        op = bob.DeleteArtifactVersions(pb.DeleteArtifactVersionsRequest(dry_run=True, **kw))
        assert op.matched == len(op.sample)
        return [s.removeprefix(f"{PROJECT}/artifacts/") for s in op.sample]

    assert matched(parent=COLL, tag="old") == ["ds/versions/v0", "ds/versions/v1", "ds/versions/v2"]
    assert matched(parent=COLL, tag="old", without_aliases=True) == ["ds/versions/v1", "ds/versions/v2"]
    assert matched(parent=COLL, metadata_key="split", metadata_value_json="1") == ["ds/versions/v1"]
    assert len(matched(parent=PROJECT)) == 8
    assert matched(parent=PROJECT, type="dataset") == []
    assert len(matched(parent=PROJECT, type="model")) == 8
    before = datetime.now(UTC) - timedelta(days=1)
    req = pb.DeleteArtifactVersionsRequest(parent=PROJECT, dry_run=True)
    req.created_before.FromDatetime(before)
    assert bob.DeleteArtifactVersions(req).matched == 0
    req.created_before.FromDatetime(datetime.now(UTC) + timedelta(minutes=1))
    assert bob.DeleteArtifactVersions(req).matched == 8
    # A real run with the same filter deletes exactly what the dry run named.
    op = _wait(
        bob,
        bob.DeleteArtifactVersions(
            pb.DeleteArtifactVersionsRequest(parent=COLL, tag="old", without_aliases=True, request_id=rid())
        ).name,
    )
    assert (op.matched, op.deleted) == (2, 2)
    assert _live(bob) == [0, 3, 4, 5]
    assert _live(bob, f"{PROJECT}/artifacts/other") == [0, 1]


@pytest.mark.parametrize(
    ("request_fields", "field"),
    [
        ({"parent": ""}, "parent"),
        ({"parent": "entities/team-a"}, "parent"),
        ({"parent": f"{COLL}/versions/v0"}, "parent"),
        ({"parent": COLL, "tag": "bad tag"}, "tag"),
        ({"parent": COLL, "type": "a/b"}, "type"),
        ({"parent": COLL, "metadata_key": "k"}, "metadata_key"),
        ({"parent": COLL, "metadata_key": "k", "metadata_value_json": "{nope"}, "metadata_value_json"),
        ({"parent": COLL}, "request_id"),
        ({"parent": COLL, "request_id": "x" * 129}, "request_id"),
    ],
)
def test_bad_input_names_the_field(world: World, request_fields: dict[str, Any], field: str) -> None:
    _log(world["bob"], 1)
    with pytest.raises(grpc.RpcError) as e:
        world["bob"].DeleteArtifactVersions(pb.DeleteArtifactVersionsRequest(**request_fields))
    assert e.value.code() == INVALID
    trailers = dict(e.value.trailing_metadata())
    info = error_details_pb2.ErrorInfo()
    status_pb2.Status.FromString(trailers["grpc-status-details-bin"]).details[0].Unpack(info)
    assert info.metadata["field"] == field, e.value.details()
    assert _live(world["bob"]) == [0]


def test_missing_parent_is_not_found(world: World) -> None:
    bob = world["bob"]
    _log(bob, 1)
    for parent in (f"{PROJECT}/artifacts/nope", "entities/team-a/projects/nope"):
        req = pb.DeleteArtifactVersionsRequest(parent=parent, request_id=rid())
        assert code(lambda r=req: bob.DeleteArtifactVersions(r)) == grpc.StatusCode.NOT_FOUND


def test_only_members_and_admins_of_the_entity(world: World) -> None:
    _log(world["bob"], 3)
    for user in ("carol", "dave", "mallory"):
        for dry in (True, False):
            req = pb.DeleteArtifactVersionsRequest(parent=COLL, dry_run=dry, request_id=rid())
            assert code(lambda r=req, u=user: world[u].DeleteArtifactVersions(r)) == DENIED, (user, dry)
    assert _live(world["bob"]) == [0, 1, 2]
    op = world["alice"].DeleteArtifactVersions(pb.DeleteArtifactVersionsRequest(parent=COLL, request_id=rid()))
    # Progress: whoever reads the entity; nobody else.
    assert _wait(world["carol"], op.name).deleted == 3
    for user in ("dave", "mallory"):
        get = pb.GetDeleteOperationRequest(name=op.name)
        assert code(lambda u=user: world[u].GetDeleteOperation(get)) == DENIED
    for bad in ("", "operations/", "operations/zz", "ops/1", f"operations/{rid()}/x"):
        assert code(lambda b=bad: world["alice"].GetDeleteOperation(pb.GetDeleteOperationRequest(name=b))) == INVALID
    missing = pb.GetDeleteOperationRequest(name=f"operations/{rid()}")
    assert code(lambda: world["alice"].GetDeleteOperation(missing)) == grpc.StatusCode.NOT_FOUND


def test_request_id_names_one_operation(world: World) -> None:
    bob, alice = world["bob"], world["alice"]
    _log(bob, 3)
    req = pb.DeleteArtifactVersionsRequest(parent=COLL, request_id=rid())
    first = bob.DeleteArtifactVersions(req)
    again = bob.DeleteArtifactVersions(req)
    assert again.name == first.name
    done = _wait(bob, first.name)
    assert bob.DeleteArtifactVersions(req) == done
    # Another request under the same id is refused; another caller's id is its own.
    other = pb.DeleteArtifactVersionsRequest(parent=COLL, tag="x", request_id=req.request_id)
    with pytest.raises(grpc.RpcError) as e:
        bob.DeleteArtifactVersions(other)
    assert e.value.code() == INVALID and "request_id" in e.value.details()
    assert alice.DeleteArtifactVersions(req).name != first.name


# -- the runner: stopped or killed mid-way, the next one continues ------------

ENTITY = "team-r"
N = 95


async def _seed(conn: asyncpg.Connection) -> Principal:
    """An entity with two collections of committed versions, written with SQL
    (every 10th version holds a custom alias); returns a superuser."""
    root = await conn.fetchval(
        "INSERT INTO entities (name, kind, superuser) VALUES ('root', 'user', true) RETURNING id"
    )
    eid = await conn.fetchval("INSERT INTO entities (name, kind) VALUES ($1, 'team') RETURNING id", ENTITY)
    pid = await conn.fetchval("INSERT INTO projects (entity_id, name) VALUES ($1, 'p') RETURNING id", eid)
    for name, n in (("a", N), ("b", 30)):
        cid = await conn.fetchval(
            "INSERT INTO collections (project_id, name, type, next_index) VALUES ($1, $2, 'model', $3) RETURNING id",
            pid,
            name,
            n,
        )
        await conn.execute(
            """
            INSERT INTO versions (uid, collection_id, index, state, digest, commit_time)
            SELECT gen_random_uuid(), $1, i, 'committed', md5(i::text), now() - interval '1 hour'
            FROM generate_series(0, $2 - 1) AS i
            """,
            cid,
            n,
        )
        await conn.execute(
            "INSERT INTO aliases (collection_id, alias, version_id)"
            " SELECT $1, 'keep' || index, id FROM versions WHERE collection_id = $1 AND index % 10 = 0",
            cid,
        )
    return Principal(root, "root", True)


async def _state(pool: asyncpg.Pool, op: str) -> asyncpg.Record:
    row = await pool.fetchrow("SELECT * FROM delete_operations WHERE id = $1", op.removeprefix("operations/"))
    assert row is not None
    return row


async def _until(pool: asyncpg.Pool, op: str, ok: Any) -> asyncpg.Record:
    deadline = time.monotonic() + 60
    while True:
        row = await _state(pool, op)
        if ok(row):
            return row
        assert time.monotonic() < deadline, dict(row)
        await asyncio.sleep(0.01)


def test_a_stopped_or_killed_runner_loses_nothing(database_url: str) -> None:
    async def main() -> None:
        pool = await db.create_pool(database_url, min_size=1, max_size=6)
        try:
            async with pool.acquire() as conn:
                root = await _seed(conn)
            database = db.Database(pool)

            def runner(**kw: Any) -> BulkDeletes:
                return BulkDeletes(
                    database, Access(database), Projects(database), grace=timedelta(hours=1), batch=10, **kw
                )

            a = runner()
            f = BulkFilter.parse(f"entities/{ENTITY}/projects/p")
            op = await a.start(root, f, delete_aliases=False, request_id="r1", fingerprint=b"f")
            task = asyncio.create_task(a.run())
            # Stopped between batches or inside one (rolled back): the lease is given back.
            await _until(pool, op.name, lambda r: r["deleted"] >= 30)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            row = await _state(pool, op.name)
            assert row["state"] == "running" and row["lease_until"] is None
            assert 30 <= row["deleted"] < N
            # A second runner dies holding it (its lease runs out, never given back).
            b = runner(lease=timedelta(seconds=1), poll_s=0.1)
            claimed = await pool.fetchval(
                "UPDATE delete_operations SET lease_owner = 'dead', lease_until = now() + interval '1 second'"
                " WHERE id = $1 RETURNING deleted",
                op.name.removeprefix("operations/"),
            )
            assert claimed == row["deleted"]
            # The same request_id again wakes its server's runner, which takes
            # over once the dead one's lease expired.
            again = await b.start(root, f, delete_aliases=False, request_id="r1", fingerprint=b"f")
            assert again.name == op.name
            task = asyncio.create_task(b.run())
            done = await _until(pool, op.name, lambda r: r["state"] != "running")
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            # Every batch ran exactly once: the counters are the truth.
            aliased = 10 + 3  # indexes 0, 10, ... of 95 and of 30
            assert (done["state"], done["matched"]) == ("done", N + 30)
            assert (done["deleted"], done["skipped_aliased"], done["skipped_linked"]) == (N + 30 - aliased, aliased, 0)
            states = dict(await pool.fetch("SELECT state, count(*) FROM versions GROUP BY state"))
            assert states == {"deleted": N + 30 - aliased, "committed": aliased}
            # `latest` moved to the newest live version of each collection.
            latest = await pool.fetch(
                "SELECT c.name, v.index FROM aliases a JOIN versions v ON v.id = a.version_id"
                " JOIN collections c ON c.id = a.collection_id WHERE a.alias = 'latest' ORDER BY c.name"
            )
            assert [tuple(r) for r in latest] == [("a", 90), ("b", 20)]
        finally:
            await pool.close()

    asyncio.run(main())


def test_versions_committed_after_the_start_are_kept(database_url: str) -> None:
    async def main() -> None:
        pool = await db.create_pool(database_url, min_size=1, max_size=4)
        try:
            async with pool.acquire() as conn:
                root = await _seed(conn)
            database = db.Database(pool)
            a = BulkDeletes(database, Access(database), Projects(database), grace=timedelta(hours=1), batch=7)
            f = BulkFilter.parse(f"entities/{ENTITY}/projects/p/artifacts/b", without_aliases=True)
            op = await a.start(root, f, delete_aliases=False, request_id="r", fingerprint=b"f")
            await pool.execute(
                "INSERT INTO versions (uid, collection_id, index, state, commit_time)"
                " SELECT gen_random_uuid(), id, 30, 'committed', now() + interval '1 second'"
                " FROM collections WHERE name = 'b'"
            )
            task = asyncio.create_task(a.run())
            done = await _until(pool, op.name, lambda r: r["state"] != "running")
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert (done["matched"], done["deleted"], done["skipped_aliased"]) == (27, 27, 0)
            left = await pool.fetch(
                "SELECT v.index FROM versions v JOIN collections c ON c.id = v.collection_id"
                " WHERE c.name = 'b' AND v.state = 'committed' ORDER BY v.index"
            )
            assert [r[0] for r in left] == [0, 10, 20, 30]
        finally:
            await pool.close()

    asyncio.run(main())
