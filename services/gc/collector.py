"""One garbage-collection pass (domain; no grpc).

Runs under a PostgreSQL advisory lock so that only one replica collects at
a time; the others report ``ran=False``. With ``force=False`` (a dry run)
nothing is changed: the pass reports what it would do.

A pass, in order:

1. expire: versions whose TTL ran out become deleted (reason ``ttl``),
   restorable for the grace period like a user's delete;
2. purge: deleted versions past their purge_time are removed for good;
3. purge_pending: pending versions older than the grace period (uploads
   whose client died) likewise;
4. mark and sweep (the ``sweeper``, services/gc/sweep.py): manifests and
   blobs no remaining version references, and older than the grace period,
   are deleted from the blob store;
5. prune: idempotency records past their window.

Each phase is timed into the report. An error in one is recorded in the
report's ``errors`` and the pass goes on where that is safe: expiry failing
changes nothing the purge relies on, but after a failed purge the blob
sweep is skipped, so the sweep only ever runs over a purge that finished.
The report is stored (passes.py) for GetStatus.

The statements run against metadata's tables are metadata's
(``depot.services.metadata.housekeeping``); this module decides when.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Protocol

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from depot.services.common.errors import Aborted, ErrorReason, InvalidArgument
from depot.services.metadata.public import housekeeping

from . import passes
from .passes import RequestKey
from .report import SAMPLE, Phase, Report
from .telemetry import GcTelemetry

log = logging.getLogger(__name__)

_LEADER_LOCK = 0x6465706F7467  # "depotg"
# A GC statement may take this long (the request path is bounded far tighter).
GC_STATEMENT_TIMEOUT_S = 600.0
# A pass over a large backlog may run longer than the per-request bounds
# (db.QUERY_TIMEOUT_S, asyncpg's command timeout): only the GC's own
# transactions get GC_STATEMENT_TIMEOUT_S.
_GC_STATEMENT_TIMEOUT = f"SET LOCAL statement_timeout = {int(GC_STATEMENT_TIMEOUT_S * 1000)}"
# Whether any session holds the collector lock (a pass runs on some replica).
# A bigint advisory key shows in pg_locks split in two 32-bit halves.
_LOCK_HELD = """
    SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted
        AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
        AND classid = $1::oid AND objid = $2::oid AND objsubid = 1)
"""


class SweepOutcome(Protocol):
    """What a blob mark-and-sweep reports (sweep.py's SweepResult)."""

    @property
    def manifests_deleted(self) -> int: ...
    @property
    def blobs_deleted(self) -> int: ...
    @property
    def bytes_freed(self) -> int: ...
    @property
    def blobs_scanned(self) -> int: ...
    @property
    def mark_s(self) -> float: ...
    @property
    def sweep_s(self) -> float: ...
    @property
    def errors(self) -> Sequence[str]: ...


class Sweeper(Protocol):
    """The blob mark-and-sweep a pass ends with (sweep.py's BlobCollector)."""

    async def run(self, entity: str, *, dry_run: bool) -> SweepOutcome: ...


class Collector:
    """GC passes over metadata's database on ``pool``.

    Args:
        pool: metadata's database.
        grace: how long a version expired now stays restorable, and how old a
            pending version must be to count as abandoned.
        sweeper: the blob mark-and-sweep; None runs the metadata phases only
            (a GC with no blob store configured, and tests of those phases).
        manifest_grace: the manifest service's grace period, when known
            (GcSettings.manifest_grace). The sweep is refused while ``grace``
            is shorter: that service refreshes a blob it answers "present"
            only once older than half its own grace, so a shorter sweep age
            could delete the blob before the commit relying on it lands.
        telemetry: spans and counters (the global OpenTelemetry providers).
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        grace: timedelta = housekeeping.DEFAULT_GRACE,
        sweeper: Sweeper | None = None,
        manifest_grace: timedelta | None = None,
        telemetry: GcTelemetry | None = None,
    ):
        self._pool = pool
        self.grace = grace
        self._sweeper = sweeper
        self._manifest_grace = manifest_grace
        self._telemetry = telemetry or GcTelemetry()

    async def run(
        self, entity: str, *, force: bool, trigger: str = "run_now", request: RequestKey | None = None
    ) -> Report:
        """One pass over ``entity`` ('' for all); a dry run unless ``force``.

        With ``request``, a retry of a RunNow that already ran answers that
        pass's report instead of running another.
        """
        async with self._pool.acquire() as conn, housekeeping.session_lock(conn, _LEADER_LOCK) as leader:
            if leader:
                # First, so a retry of a pass whose process died gets that
                # pass's report (interrupted) rather than ABORTED for ever.
                await passes.close_interrupted(conn)
            if request is not None:
                earlier = await passes.find(conn, request)
                if earlier is not None:
                    return _replay(earlier, entity, force, request)
            if not leader:
                return Report(ran=False, dry_run=not force, entity=entity, trigger=trigger)
            report = Report(ran=True, dry_run=not force, entity=entity, trigger=trigger, start_time=datetime.now(UTC))
            pass_id = await passes.begin(conn, report, request)
            start = time.monotonic()
            with self._telemetry.pass_span(report) as span:
                await self._pass(conn, report)
                # To the microsecond, as stored: a replayed report equals the first.
                report.duration_s = round(time.monotonic() - start, 6)
                self._telemetry.record(span, report)
            await passes.finish(conn, pass_id, report)
            log.info(
                "gc pass (%s, entity=%r, dry_run=%s): %s, errors=%s",
                trigger,
                entity,
                report.dry_run,
                report.counters(),
                report.errors,
            )
            return report

    async def status(self, entity: str | None) -> tuple[list[Report], bool]:
        """The newest reports (of ``entity``'s passes, or all with None) and whether a pass runs now."""
        async with self._pool.acquire() as conn:
            reports = await passes.last(conn, entity)
            running = bool(await conn.fetchval(_LOCK_HELD, _LEADER_LOCK >> 32, _LEADER_LOCK & 0xFFFFFFFF))
        return reports, running

    async def _pass(self, conn: PoolConnectionProxy, report: Report) -> None:
        await self._phase(report, "expire", lambda: self._expire(conn, report))
        purged = await self._phase(report, "purge", lambda: self._purge(conn, report))
        pending = await self._phase(report, "purge_pending", lambda: self._purge_pending(conn, report))
        if self._sweeper is not None:
            if not (purged and pending):
                report.errors.append("mark, sweep: skipped after a failed purge")
            elif (refused := self._grace_too_short()) is not None:
                report.errors.append(refused)
            else:
                await self._sweep(report, self._sweeper)
        if not report.dry_run:

            async def prune() -> int:
                # Apart from the rest, so a failed phase does not also keep the
                # idempotency table growing.
                async with conn.transaction():
                    await conn.execute(_GC_STATEMENT_TIMEOUT)
                    await housekeeping.prune_idempotency(conn, GC_STATEMENT_TIMEOUT_S)
                return 0

            await self._phase(report, "prune", prune)

    def _grace_too_short(self) -> str | None:
        """Why the sweep must not run with this grace period, or None."""
        if self._manifest_grace is None or self.grace >= self._manifest_grace:
            return None
        return (
            f"mark, sweep: refused: the GC's grace period (DEPOT_GRACE_PERIOD_S = "
            f"{self.grace.total_seconds():g} s) is shorter than the manifest service's "
            f"(DEPOT_MANIFEST_GRACE_PERIOD_S = {self._manifest_grace.total_seconds():g} s), "
            "which could sweep a blob a commit relies on; give both services the same value"
        )

    async def _phase(self, report: Report, name: str, work: Callable[[], Awaitable[int]]) -> bool:
        """Runs one phase in its span; records its duration and items, or its error. Whether it succeeded."""
        start = time.monotonic()
        with self._telemetry.phase_span(name) as span:
            try:
                items = await work()
            except Exception as e:  # noqa: BLE001 - recorded in the report; the pass goes on where safe
                log.exception("gc phase %s failed", name)
                report.errors.append(f"{name}: {type(e).__name__}: {e}")
                span.record_exception(e)
                report.phases.append(Phase(name, time.monotonic() - start, 0))
                return False
            span.set_attribute("depot.gc.items", items)
        report.phases.append(Phase(name, time.monotonic() - start, items))
        return True

    async def _expire(self, conn: PoolConnectionProxy, report: Report) -> int:
        report.add_sample(await housekeeping.expired_sample(conn, report.entity, SAMPLE))
        if report.dry_run:
            report.versions_expired = await housekeeping.count_expired(conn, report.entity)
            return report.versions_expired
        after = housekeeping.START
        while True:
            async with conn.transaction():
                await conn.execute(_GC_STATEMENT_TIMEOUT)
                batch = await housekeeping.expire(conn, report.entity, GC_STATEMENT_TIMEOUT_S, self.grace, after)
            report.versions_expired += batch.count
            if batch.count < housekeeping.BATCH:
                return report.versions_expired
            after = batch.after

    async def _purge(self, conn: PoolConnectionProxy, report: Report) -> int:
        report.add_sample(await housekeeping.purge_sample(conn, report.entity, SAMPLE))
        if report.dry_run:
            report.versions_purged = await housekeeping.count_purgeable(conn, report.entity)
            return report.versions_purged
        # One bounded transaction per batch: what is purged stays purged if
        # a later batch fails, and the next pass continues from there.
        after = housekeeping.START
        while True:
            async with conn.transaction():
                await conn.execute(_GC_STATEMENT_TIMEOUT)
                batch = await housekeeping.purge_batch(conn, report.entity, GC_STATEMENT_TIMEOUT_S, after)
            report.versions_purged += batch.count
            if batch.count < housekeeping.BATCH:
                return report.versions_purged
            after = batch.after

    async def _purge_pending(self, conn: PoolConnectionProxy, report: Report) -> int:
        report.add_sample(await housekeeping.abandoned_sample(conn, report.entity, self.grace, SAMPLE))
        if report.dry_run:
            report.pending_purged = await housekeeping.count_abandoned(conn, report.entity, self.grace)
            return report.pending_purged
        after = housekeeping.START
        while True:
            async with conn.transaction():
                await conn.execute(_GC_STATEMENT_TIMEOUT)
                batch = await housekeeping.purge_abandoned_batch(
                    conn, report.entity, self.grace, GC_STATEMENT_TIMEOUT_S, after
                )
            report.pending_purged += batch.count
            if batch.count < housekeeping.BATCH:
                return report.pending_purged
            after = batch.after

    async def _sweep(self, report: Report, sweeper: Sweeper) -> None:
        """The blob mark-and-sweep; its own timings become the mark and sweep phases."""
        outcome: SweepOutcome | None = None

        async def sweep() -> int:
            nonlocal outcome
            outcome = await sweeper.run(report.entity, dry_run=report.dry_run)
            return outcome.blobs_deleted

        await self._phase(report, "mark_sweep", sweep)
        if outcome is None:
            return
        report.phases[-1:] = [
            Phase("mark", outcome.mark_s, outcome.blobs_scanned),
            Phase("sweep", outcome.sweep_s, outcome.blobs_deleted),
        ]
        report.manifests_deleted = outcome.manifests_deleted
        report.blobs_deleted = outcome.blobs_deleted
        report.bytes_freed = outcome.bytes_freed
        report.blobs_scanned = outcome.blobs_scanned
        report.errors.extend(f"sweep: {e}" for e in outcome.errors)


def _replay(earlier: Report, entity: str, force: bool, request: RequestKey) -> Report:
    """The report a RunNow retry gets: the first call's, for the same request only."""
    if (earlier.entity, earlier.dry_run) != (entity, not force):
        raise InvalidArgument(
            f"request_id {request.request_id!r} was already used for a different RunNow request; "
            "use a new request_id for a new request",
            field="request_id",
            reason=ErrorReason.REQUEST_ID_REUSED,
        )
    if not earlier.finished:
        raise Aborted(
            f"the pass started with request_id {request.request_id!r} is still running; retry for its report",
            field="request_id",
        )
    return earlier


__all__ = ["Collector", "GC_STATEMENT_TIMEOUT_S", "Report", "Sweeper", "SweepOutcome"]
