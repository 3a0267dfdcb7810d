"""GC passes on a real server's database: TTL expiry, purge, abandoned uploads, reports, telemetry.

Time is moved by rewriting commit/create/purge times in the database, never
by sleeping: each test says which clock it moved.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

import asyncpg
import grpc
import pytest
from google.protobuf import duration_pb2, field_mask_pb2
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from support.world import PROJECT, TEAM, Meta, World, code

from depot.metadata.v1 import metadata_pb2 as pb
from depot.services.gc import passes
from depot.services.gc.collector import Collector, Sweeper
from depot.services.gc.report import Report
from depot.services.gc.telemetry import GcTelemetry
from depot.services.metadata import db, housekeeping

T = TypeVar("T")
HOUR = timedelta(hours=1)


def _on_pool(dsn: str, work: Callable[[asyncpg.Pool], Awaitable[T]]) -> T:
    async def run() -> T:
        pool = await db.create_pool(dsn, min_size=1, max_size=3)
        try:
            return await work(pool)
        finally:
            await pool.close()

    return asyncio.run(run())


def _pass(dsn: str, force: bool = True, grace: timedelta = HOUR, **kw: Any) -> Report:
    return _on_pool(dsn, lambda pool: Collector(pool, grace=grace, **kw).run("", force=force))


def _sql(dsn: str, statement: str, *args: Any) -> Any:
    async def run() -> Any:
        conn = await asyncpg.connect(dsn)
        try:
            return await conn.fetch(statement, *args)
        finally:
            await conn.close()

    return asyncio.run(run())


def _dur(seconds: float) -> duration_pb2.Duration:
    d = duration_pb2.Duration()
    d.FromTimedelta(timedelta(seconds=seconds))
    return d


def _inherit(m: Meta, name: str) -> None:
    v = pb.ArtifactVersion(name=name, ttl_mode=pb.TTL_MODE_INHERIT)
    m.UpdateArtifactVersion(
        pb.UpdateArtifactVersionRequest(version=v, update_mask=field_mask_pb2.FieldMask(paths=["ttl"]))
    )


def _team_default(m: Meta, seconds: float) -> None:
    m.UpdateEntitySettings(
        pb.UpdateEntitySettingsRequest(
            name=f"entities/{TEAM}",
            settings=pb.EntitySettings(default_ttl=_dur(seconds)),
            update_mask=field_mask_pb2.FieldMask(paths=["default_ttl"]),
        )
    )


def _get(m: Meta, name: str) -> grpc.StatusCode:
    return code(lambda: m.GetArtifactVersion(pb.GetArtifactVersionRequest(name=name)))


def test_ttl_expiry_follows_the_team_default_and_never_takes_a_linked_version(world: World, server) -> None:
    dsn = server.config.database_url
    bob, alice = world["bob"], world["alice"]
    coll = f"{PROJECT}/artifacts/m"
    for i in range(2):
        bob.log(TEAM, "p", "m", {"w": bytes([i])}, type_="model")
        _inherit(bob, f"{coll}/versions/v{i}")
    world.member("acme", "bob", "member")
    world.admin.SetRegistryMember(
        pb.SetRegistryMemberRequest(registry="entities/acme/registries/model", user="entities/bob", role="member")
    )
    bob.LinkArtifactVersion(
        pb.LinkArtifactVersionRequest(
            version=f"{coll}/versions/v1", target="entities/acme/registries/model/collections/keep"
        )
    )
    # Committed an hour ago; the team keeps versions a day: nothing expires.
    _sql(dsn, "UPDATE versions SET commit_time = commit_time - interval '1 hour'")
    _team_default(alice, 86400)
    assert _pass(dsn).versions_expired == 0
    assert _get(bob, f"{coll}/versions/v0") == grpc.StatusCode.OK
    # The team default drops to a minute: the inheriting version follows it
    # on the next pass; the linked one never expires.
    _team_default(alice, 60)
    report = _pass(dsn)
    assert report.versions_expired == 1
    assert report.sample == [f"{coll}/versions/v0"]
    assert _get(bob, f"{coll}/versions/v0") == grpc.StatusCode.NOT_FOUND
    assert _get(bob, f"{coll}/versions/v1") == grpc.StatusCode.OK
    # Expiry is a delete by the system: restorable until purge_time.
    (row,) = _sql(dsn, "SELECT delete_reason, purge_time - delete_time AS grace FROM versions WHERE index = 0")
    assert (row["delete_reason"], row["grace"]) == ("ttl", HOUR)
    # Past its purge_time (moved back an hour and a second) the expired
    # version is purged; the linked one is still there, whatever the passes.
    _sql(dsn, "UPDATE versions SET purge_time = purge_time - interval '3601 seconds' WHERE state = 'deleted'")
    assert _pass(dsn).versions_purged == 1
    assert _pass(dsn).versions_purged == 0
    assert [r["index"] for r in _sql(dsn, "SELECT index FROM versions ORDER BY index")] == [1]
    assert _get(bob, f"{coll}/versions/v1") == grpc.StatusCode.OK


def test_purge_waits_for_purge_time_then_removes_the_version_and_its_edges(world: World, server) -> None:
    dsn = server.config.database_url
    bob = world["bob"]
    coll = f"{PROJECT}/artifacts/ds"
    v0 = bob.log(TEAM, "p", "ds", {"f": b"0"})
    bob.log(TEAM, "p", "ds", {"f": b"1"})
    run = bob.CreateRun(pb.CreateRunRequest(parent=PROJECT, run_id="r"))
    bob.UseArtifactVersion(pb.UseArtifactVersionRequest(run=run.name, version=v0.name))
    # v0 deleted by its TTL an hour... from now: grace of an hour.
    _sql(
        dsn,
        "UPDATE versions SET ttl = '1 second', ttl_inherit = false,"
        " commit_time = commit_time - interval '1 hour'"
        " WHERE index = 0",
    )
    first = _pass(dsn)
    assert (first.versions_expired, first.versions_purged) == (1, 0)
    assert _sql(dsn, "SELECT state FROM versions WHERE index = 0")[0]["state"] == "deleted"
    # Within the grace the row (and its lineage edge) stays, restorable.
    assert _pass(dsn).versions_purged == 0
    assert len(_sql(dsn, "SELECT 1 FROM run_inputs")) == 1
    # A dry run past purge_time counts and names it, and changes nothing.
    _sql(dsn, "UPDATE versions SET purge_time = now() - interval '1 second' WHERE state = 'deleted'")
    dry = _pass(dsn, force=False)
    assert (dry.dry_run, dry.versions_purged, dry.sample) == (True, 1, [f"{coll}/versions/v0"])
    assert len(_sql(dsn, "SELECT 1 FROM versions")) == 2
    done = _pass(dsn)
    assert done.versions_purged == 1
    assert [r["index"] for r in _sql(dsn, "SELECT index FROM versions")] == [1]
    assert _sql(dsn, "SELECT 1 FROM run_inputs") == []
    assert _get(bob, f"{coll}/versions/v0") == grpc.StatusCode.NOT_FOUND
    assert _get(bob, f"{coll}/versions/latest") == grpc.StatusCode.OK
    undelete = pb.UndeleteArtifactVersionRequest(name=f"{coll}/versions/v0")
    assert code(lambda: bob.UndeleteArtifactVersion(undelete)) == grpc.StatusCode.NOT_FOUND


def test_a_users_delete_is_undeletable_until_purged_then_gone(world: World, server) -> None:
    dsn = server.config.database_url
    bob = world["bob"]
    coll = f"{PROJECT}/artifacts/ds"
    for i in range(2):
        bob.log(TEAM, "p", "ds", {"f": bytes([i])})
    v0 = f"{coll}/versions/v0"
    bob.DeleteArtifactVersion(pb.DeleteArtifactVersionRequest(name=v0))
    undelete = pb.UndeleteArtifactVersionRequest(name=v0)
    # Within the grace (the server's 7 days) passes leave it; undelete restores it.
    assert _pass(dsn).versions_purged == 0
    bob.UndeleteArtifactVersion(undelete)
    assert _get(bob, v0) == grpc.StatusCode.OK
    bob.DeleteArtifactVersion(pb.DeleteArtifactVersionRequest(name=v0))
    # Its purge_time passes (moved to a second ago): the next pass purges it.
    _sql(dsn, "UPDATE versions SET purge_time = now() - interval '1 second' WHERE state = 'deleted'")
    report = _pass(dsn)
    assert (report.versions_purged, report.sample) == (1, [v0])
    assert _get(bob, v0) == grpc.StatusCode.NOT_FOUND
    assert code(lambda: bob.UndeleteArtifactVersion(undelete)) == grpc.StatusCode.NOT_FOUND
    assert _get(bob, f"{coll}/versions/v1") == grpc.StatusCode.OK


def test_abandoned_pending_versions_are_purged_after_the_grace(world: World, server) -> None:
    dsn = server.config.database_url
    bob = world["bob"]
    for name in ("old", "new"):
        bob.CreateArtifactVersion(pb.CreateArtifactVersionRequest(parent=PROJECT, artifact=name, type="dataset"))
    bob.log(TEAM, "p", "ds", {"f": b"committed"})
    # The upload of "old" started two hours ago; its client is gone.
    _sql(
        dsn,
        "UPDATE versions v SET create_time = now() - interval '2 hours' FROM collections c"
        " WHERE c.id = v.collection_id AND c.name IN ('old', 'ds')",
    )
    dry = _pass(dsn, force=False)
    assert dry.pending_purged == 1 and len(dry.sample) == 1
    assert dry.sample[0].startswith(f"{PROJECT}/artifacts/old/versions/")
    assert _pass(dsn).pending_purged == 1
    left = _sql(
        dsn, "SELECT c.name, v.state FROM versions v JOIN collections c ON c.id = v.collection_id ORDER BY c.name"
    )
    assert [(r["name"], r["state"]) for r in left] == [("ds", "committed"), ("new", "pending")]


@dataclass
class _Sweep:
    """A blob sweep standing in for sweep.py's: what the collector calls and reports."""

    manifests_deleted: int = 1
    blobs_deleted: int = 3
    bytes_freed: int = 300
    blobs_scanned: int = 10
    mark_s: float = 0.5
    sweep_s: float = 0.25
    errors: list[str] = field(default_factory=lambda: ["one blob: SlowDown, left for the next pass"])
    calls: list[tuple[str, bool]] = field(default_factory=list)

    async def run(self, entity: str, *, dry_run: bool) -> _Sweep:
        self.calls.append((entity, dry_run))
        return self


def test_a_pass_reports_its_phases_and_the_sweep_and_is_stored(world: World, server) -> None:
    dsn = server.config.database_url
    sweep = _Sweep()
    swept: Sweeper = sweep
    report = _pass(dsn, sweeper=swept)
    assert sweep.calls == [("", False)]
    assert [p.name for p in report.phases] == ["expire", "purge", "purge_pending", "mark", "sweep", "prune"]
    assert (report.phases[3].items, report.phases[4].items) == (10, 3)
    assert report.counters() == {
        "versions_expired": 0,
        "versions_purged": 0,
        "pending_purged": 0,
        "manifests_deleted": 1,
        "blobs_deleted": 3,
        "bytes_freed": 300,
        "blobs_scanned": 10,
    }
    assert report.errors == ["sweep: one blob: SlowDown, left for the next pass"]

    async def stored(pool: asyncpg.Pool) -> list[Report]:
        async with pool.acquire() as conn:
            return await passes.last(conn, None)

    (back,) = _on_pool(dsn, stored)
    assert back.finished and back.trigger == "run_now" and back.entity == ""
    assert back.counters() == report.counters() and back.errors == report.errors
    assert [(p.name, p.items) for p in back.phases] == [(p.name, p.items) for p in report.phases]


def test_a_failed_purge_skips_the_sweep_and_a_dead_pass_is_closed(world: World, server) -> None:
    dsn = server.config.database_url
    world["bob"].log(TEAM, "p", "ds", {"f": b"0"})
    _sql(dsn, "UPDATE versions SET state = 'deleted', purge_time = now() - interval '1 second', delete_reason = 'user'")
    # A pass whose process died: no end_time.
    _sql(dsn, "INSERT INTO gc_passes (entity, trigger, dry_run) VALUES ('', 'schedule', false)")
    # The purge fails (a trigger refusing deletes stands for a database error).
    _sql(
        dsn,
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE 'no deletes today'; END $$",
    )
    _sql(dsn, "CREATE TRIGGER refuse BEFORE DELETE ON versions FOR EACH ROW EXECUTE FUNCTION refuse()")
    sweep = _Sweep()
    report = _pass(dsn, sweeper=sweep)
    assert sweep.calls == []
    assert report.ran and report.versions_purged == 0
    assert report.errors[0].startswith("purge: ") and "no deletes today" in report.errors[0]
    assert report.errors[1] == "mark, sweep: skipped after a failed purge"
    # The other phases ran.
    assert [p.name for p in report.phases] == ["expire", "purge", "purge_pending", "prune"]
    rows = _sql(dsn, "SELECT end_time IS NOT NULL AS ended, errors FROM gc_passes ORDER BY id")
    assert [r["ended"] for r in rows] == [True, True]
    assert json.loads(rows[0]["errors"]) == [passes.INTERRUPTED]
    assert json.loads(rows[1]["errors"]) == report.errors


def test_spans_and_counters(world: World, server) -> None:
    dsn = server.config.database_url
    bob = world["bob"]
    for i in range(2):
        bob.log(TEAM, "p", "ds", {"f": bytes([i])})
    _sql(
        dsn, "UPDATE versions SET ttl = '1 second', ttl_inherit = false, commit_time = commit_time - interval '1 hour'"
    )
    spans = InMemorySpanExporter()
    tracing = TracerProvider()
    tracing.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    telemetry = GcTelemetry(tracing, MeterProvider(metric_readers=[reader]))
    _on_pool(dsn, lambda pool: Collector(pool, telemetry=telemetry).run(TEAM, force=False))
    _on_pool(dsn, lambda pool: Collector(pool, telemetry=telemetry, sweeper=_Sweep()).run(TEAM, force=True))
    by_name: dict[str, list[Any]] = {}
    for s in spans.get_finished_spans():
        by_name.setdefault(s.name, []).append(s)
    dry, real = by_name["gc.pass"]
    assert dry.attributes["depot.gc.dry_run"] and not real.attributes["depot.gc.dry_run"]
    assert (dry.attributes["depot.gc.entity"], dry.attributes["depot.gc.versions_expired"]) == (TEAM, 2)
    assert real.attributes["depot.gc.blobs_deleted"] == 3 and real.attributes["depot.gc.errors"] == 1
    for phase in ("gc.expire", "gc.purge", "gc.purge_pending", "gc.mark_sweep", "gc.prune"):
        assert by_name[phase][-1].parent.span_id == real.context.span_id, phase
    assert by_name["gc.expire"][-1].attributes["depot.gc.items"] == 2
    # Counters count what was done: the dry run adds nothing but its errors (none).
    data = reader.get_metrics_data()
    sums = {
        m.name: sum(p.value for p in m.data.data_points)
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
    }
    assert sums["depot.gc.versions_expired"] == 2
    assert (sums["depot.gc.blobs_deleted"], sums["depot.gc.bytes_freed"], sums["depot.gc.errors"]) == (3, 300, 1)


def test_batches_follow_each_other_through_the_backlog(world: World, server, monkeypatch: pytest.MonkeyPatch) -> None:
    """With batches of 2, five versions of each kind take three transactions per phase, all in one pass."""
    dsn = server.config.database_url
    bob = world["bob"]
    for i in range(5):
        bob.log(TEAM, "p", "ds", {"f": bytes([i])})
        bob.CreateArtifactVersion(pb.CreateArtifactVersionRequest(parent=PROJECT, artifact="up", type="dataset"))
    _sql(
        dsn,
        "UPDATE versions SET ttl = '1 second', ttl_inherit = false, commit_time = now() - interval '1 hour',"
        " create_time = now() - interval '2 hours'",
    )
    monkeypatch.setattr(housekeeping, "BATCH", 2)
    # A zero grace: what expires is purged in the same pass.
    report = _pass(dsn, grace=timedelta(0))
    assert (report.versions_expired, report.versions_purged, report.pending_purged) == (5, 5, 5)
    assert _sql(dsn, "SELECT 1 FROM versions") == []


def test_a_retry_of_a_pass_whose_process_died_gets_its_report(world: World, server) -> None:
    dsn = server.config.database_url
    key = passes.RequestKey(caller_id=1, request_id="r1")
    _sql(
        dsn,
        "INSERT INTO gc_passes (entity, trigger, dry_run, caller_id, request_id)"
        " VALUES ('', 'run_now', false, 1, 'r1')",
    )
    report = _on_pool(dsn, lambda pool: Collector(pool).run("", force=True, request=key))
    assert report.ran and report.finished and report.errors == [passes.INTERRUPTED]
    assert len(_sql(dsn, "SELECT 1 FROM gc_passes")) == 1
