"""GcService on the all-in-one server: who may run passes and read their reports, retries, status."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import grpc
import pytest
from support.servers import ServerThread, make_config
from support.world import TEAM, World, code

from depot.gc.v1 import gc_pb2 as gpb
from depot.gc.v1 import gc_pb2_grpc
from depot.services.common import serving
from depot.services.gc.collector import _LEADER_LOCK, Collector
from depot.services.gc.config import GcSettings
from depot.services.gc.server import Gc
from depot.services.metadata import db
from depot.services.metadata.access import AUTH_CACHE_S
from depot.services.metadata.housekeeping import DEFAULT_GRACE


class _Gc:
    def __init__(self, channel: grpc.Channel, key: str):
        self._stub = gc_pb2_grpc.GcServiceStub(channel)
        self._md = (("authorization", f"Bearer {key}"),)

    def run(self, entity: str = "", dry_run: bool = False, request_id: str = "") -> gpb.CollectionReport:
        return self._stub.RunNow(
            gpb.RunNowRequest(entity=entity, dry_run=dry_run, request_id=request_id), metadata=self._md
        )

    def status(self, entity: str = "") -> gpb.GcStatus:
        return self._stub.GetStatus(gpb.GetStatusRequest(entity=entity), metadata=self._md)


def _gc(world: World, user: str | None = None) -> _Gc:
    return _Gc(world.channel, world[user].key if user else world.admin.key)


DENIED = grpc.StatusCode.PERMISSION_DENIED


def test_only_superusers_and_entity_admins_collect_and_read_reports(world: World) -> None:
    for user in ("bob", "carol", "dave", "mallory"):  # member, viewer, other team, nobody
        gc = _gc(world, user)
        assert code(lambda: gc.run(TEAM)) == DENIED, user
        assert code(lambda: gc.status(TEAM)) == DENIED, user
    alice = _gc(world, "alice")
    # An entity's admin: its own passes, never every entity's nor another's.
    assert code(lambda: alice.run()) == DENIED
    assert code(lambda: alice.status()) == DENIED
    assert code(lambda: alice.run("team-b")) == DENIED
    assert code(lambda: alice.status("team-b")) == DENIED
    mine = alice.run(TEAM, dry_run=True)
    assert (mine.ran, mine.dry_run, mine.entity, mine.trigger) == (True, True, TEAM, "run_now")
    assert alice.run(f"entities/{TEAM}").entity == TEAM
    admin = _gc(world)
    everything = admin.run()
    assert everything.ran and everything.entity == ""
    assert [p.name for p in everything.phases][:3] == ["expire", "purge", "purge_pending"]
    # Reports: alice sees her entity's passes; the superuser sees all.
    assert [p.entity for p in alice.status(TEAM).last_passes] == [TEAM, TEAM]
    assert [p.entity for p in admin.status().last_passes] == ["", TEAM, TEAM]
    assert code(lambda: admin.run("no-such-team")) == grpc.StatusCode.NOT_FOUND
    assert code(lambda: admin.run("bad/name")) == grpc.StatusCode.INVALID_ARGUMENT
    assert code(lambda: admin.run(request_id="a\nb")) == grpc.StatusCode.INVALID_ARGUMENT


def test_run_now_is_idempotent_under_request_id(world: World, server) -> None:
    alice = _gc(world, "alice")
    rid = uuid.uuid4().hex
    first = alice.run(TEAM, request_id=rid)
    again = alice.run(TEAM, request_id=rid)
    assert again == first
    assert len(alice.status(TEAM).last_passes) == 1
    # The id names that request: another request under it is refused, and runs nothing.
    with pytest.raises(grpc.RpcError) as e:
        alice.run(TEAM, dry_run=True, request_id=rid)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "request_id" in (e.value.details() or "")
    assert code(lambda: alice.run(TEAM, request_id="x" * 129)) == grpc.StatusCode.INVALID_ARGUMENT
    # A caller who lost the role gets no replay.
    world.member(TEAM, "bob", "admin")  # a team keeps an admin
    world.member(TEAM, "alice", "member")
    # The GC's own role cache lets the change in within AUTH_CACHE_S (the documented bound).
    time.sleep(AUTH_CACHE_S)
    assert code(lambda: alice.run(TEAM, request_id=rid)) == DENIED
    assert len(_gc(world).status(TEAM).last_passes) == 1


def test_status_shows_counters_schedule_and_the_running_flag(world: World, server) -> None:
    bob, admin = world["bob"], _gc(world)
    for i in range(3):
        bob.log(TEAM, "p", "ds", {"f": bytes([i])})

    async def expire_all() -> None:
        conn = await asyncpg.connect(server.config.database_url)
        try:
            await conn.execute(
                "UPDATE versions SET ttl = '1 second', ttl_inherit = false,"
                " commit_time = commit_time - interval '1 hour'"
            )
        finally:
            await conn.close()

    asyncio.run(expire_all())
    dry = admin.run(dry_run=True)
    done = admin.run()
    assert (dry.versions_expired, done.versions_expired) == (3, 3)
    status = admin.status()
    assert [(p.dry_run, p.versions_expired) for p in status.last_passes] == [(False, 3), (True, 3)]
    assert len(status.last_passes[0].sample) == 3
    assert status.last_passes[0].duration.ToTimedelta() >= timedelta(0)
    assert status.grace_period.ToTimedelta() == DEFAULT_GRACE
    # The test server's schedule is the default hour (due within it).
    assert status.interval.ToTimedelta() == timedelta(hours=1)
    assert status.HasField("next_pass_time")
    assert not status.running

    async def while_another_collects() -> tuple[bool, bool]:
        pool = await db.create_pool(server.config.database_url, min_size=1, max_size=2)
        try:
            async with pool.acquire() as holder:
                await holder.execute("SELECT pg_advisory_lock($1)", _LEADER_LOCK)
                running = admin.status().running
                blocked = await Collector(pool).run("", force=True)
                await holder.execute("SELECT pg_advisory_unlock($1)", _LEADER_LOCK)
            return running, blocked.ran
        finally:
            await pool.close()

    assert asyncio.run(while_another_collects()) == (True, False)
    # A replica that did not collect stores no report.
    assert len(admin.status().last_passes) == 2


def test_the_all_in_one_runs_the_schedule_with_its_grace(tmp_path, database_url: str) -> None:
    cfg = make_config(
        tmp_path / "data",
        database_url,
        (tmp_path / "blobs").as_uri(),
        DEPOT_GC_INTERVAL_S="0.2",
        DEPOT_GRACE_PERIOD_S="5",
    )
    srv = ServerThread(cfg).start()
    try:
        with grpc.insecure_channel(srv.address) as channel:
            gc = _Gc(channel, srv.admin_key)
            # Polled, not timed: scheduled passes show up in the status once they ran.
            deadline = time.monotonic() + 60
            status = gc.status()
            while not any(p.trigger == "schedule" for p in status.last_passes) and time.monotonic() < deadline:
                time.sleep(0.2)
                status = gc.status()
            assert [p.trigger for p in status.last_passes if p.trigger == "schedule"]
            assert status.interval.ToTimedelta() == timedelta(seconds=0.2)
            assert status.grace_period.ToTimedelta() == timedelta(seconds=5)
    finally:
        srv.stop()


def test_a_process_without_the_schedule_reports_it_from_the_last_scheduled_pass(server) -> None:
    """An all-in-one worker serves GcService without running the schedule: its
    next_pass_time is an interval after the last scheduled pass."""

    async def scenario() -> tuple[gpb.GcStatus, gpb.GcStatus, datetime]:
        pool = await db.create_pool(server.config.database_url, min_size=1, max_size=2)
        grpc_server = None
        try:
            # A pass the schedule ran (elsewhere) before.
            started = await pool.fetchval(
                "INSERT INTO gc_passes (entity, trigger, dry_run, end_time) VALUES ('', 'schedule', false, now())"
                " RETURNING start_time"
            )
            gc = Gc(pool, GcSettings(interval_s=600.0))
            grpc_server = serving.new_server(gc.callers())
            port = serving.bind(grpc_server, "127.0.0.1:0")
            await serving.start(grpc_server, [gc.add_to(grpc_server)])
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = gc_pb2_grpc.GcServiceStub(channel)
                md = (("authorization", f"Bearer {server.admin_key}"),)
                everything = await stub.GetStatus(gpb.GetStatusRequest(), metadata=md)
                # An entity's view has no scheduled pass (those cover every entity).
                one = await stub.GetStatus(gpb.GetStatusRequest(entity="team"), metadata=md)
            return everything, one, started
        finally:
            if grpc_server is not None:
                await grpc_server.stop(None)
            await pool.close()

    everything, one, started = asyncio.run(scenario())
    assert everything.next_pass_time.ToDatetime(tzinfo=UTC) == started + timedelta(seconds=600)
    assert not one.HasField("next_pass_time") and one.interval.ToTimedelta() == timedelta(seconds=600)
