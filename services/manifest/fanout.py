"""Reference fan-out: one large s3:// listing shared by every manifest replica.

The replica a caller reached plans the prefix as usual (``s3_listing``'s
key-range units) and, when the plan holds at least ``min_objects`` keys,
records consecutive runs of units as *items* of a job in PostgreSQL
(``reference_fanout_*``, migration 0008). Every replica with
``DEPOT_DATABASE_URL`` runs a claim loop: it takes a pending item with
``FOR UPDATE SKIP LOCKED`` and a lease, lists the item's ranges into a sorted
segment it stores in the blob store (``~fanout/<job>/<item>-<claim>``; the
GC never reads outside entities' own prefixes), renews the lease while it
lists and records the segment when done. A replica that dies stops renewing:
its lease runs out and another replica claims the item again, lists it from
the start and stores a segment of its own claim, so nothing half-written is
ever used. The coordinator waits for every item, then copies the segments in
item order (consecutive key ranges: the concatenation is sorted) into the
reference's manifest writer: the same entries in the same order as one
process listing alone, hence the same digest. It then deletes the job and
the segments; a job whose coordinator died is cleaned up by any replica once
its heartbeat is ``stale_after_s`` old.

A hand-written table rather than ``pgqueuer``: see docs/fanout.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import asyncpg

from depot.native import ManifestReader, ManifestWriter
from depot.services.common.errors import (
    Aborted,
    DepotError,
    ErrorReason,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    S3Unavailable,
    StorageFull,
    StorageNotWritable,
    TooManyObjects,
    Unauthenticated,
    Unavailable,
)

from .references import ReferencePolicy
from .s3_listing import S3Plan, s3_client, units_from_json, write_s3_units
from .store import BlobStore

log = logging.getLogger(__name__)

SEGMENT_PREFIX = "~fanout"
# S3 connections kept open at once (one per bucket recently listed).
_MAX_CLIENTS = 8
# The domain errors an item's failure is recorded as and raised again by the
# coordinator (by class name), so the caller sees the single-process answer.
# Another DepotError is recorded as its nearest listed base class.
_KINDS: dict[str, type[DepotError]] = {
    cls.__name__: cls
    for cls in (
        DepotError,
        InvalidArgument,
        NotFound,
        FailedPrecondition,
        PermissionDenied,
        Unauthenticated,
        ResourceExhausted,
        StorageFull,
        StorageNotWritable,
        Aborted,
        Unavailable,
        S3Unavailable,
        TooManyObjects,
    )
}


@dataclass(frozen=True)
class FanOutSettings:
    # A reference whose plan holds fewer keys than this is listed by the replica the caller reached.
    min_objects: int = 100_000
    # Items per job: enough to spread over the replicas and to lose little when one dies.
    items: int = 32
    # A claim not renewed for this long is taken by another replica.
    lease_s: float = 30.0
    # Items one replica lists at once, and S3 requests per item.
    slots: int = 4
    item_concurrency: int = 8
    # An item claimed this many times without finishing fails the job.
    max_attempts: int = 5
    # How often an idle replica looks for items and the coordinator for their end.
    poll_s: float = 0.25

    @property
    def stale_after_s(self) -> float:
        return 10 * self.lease_s

    @property
    def pool_size(self) -> int:
        """Database connections one replica's claim loop opens at most: one per slot, and a few
        for the coordinator's polls and the lease renewals."""
        return self.slots + 4


@dataclass(frozen=True)
class _Claim:
    job: uuid.UUID
    item: int
    claim: uuid.UUID
    units: list[list[str]]
    spec: dict[str, Any]

    @property
    def segment_key(self) -> str:
        return f"{SEGMENT_PREFIX}/{self.job}/{self.item:05d}-{self.claim}"


def replica_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@contextlib.asynccontextmanager
async def _database(what: str) -> AsyncIterator[None]:
    """PostgreSQL failing (never its DSN, which holds a password) as Unavailable."""
    try:
        yield
    except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
        raise Unavailable(f"reference fan-out: {what}: {type(e).__name__}") from None


class ReferenceFanOut:
    """This replica's part: the coordinator of its callers' listings (``__call__``,
    the ``s3_listing.FanOut``) and a claim loop working every replica's items."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        store: BlobStore,
        policy: ReferencePolicy,
        settings: FanOutSettings | None = None,
        replica: str | None = None,
    ) -> None:
        self._pool = pool
        self._store = store
        self._policy = policy
        self.settings = settings or FanOutSettings()
        self.replica = replica or replica_name()
        self._wake = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None
        # bucket -> [S3 connection, items using it]; idle ones beyond _MAX_CLIENTS are closed.
        self._clients: dict[str, list[Any]] = {}
        self._clients_lock = asyncio.Lock()

    def start(self) -> None:
        self._loop = asyncio.create_task(self._claim_loop(), name="depot-fanout-claims")

    async def close(self) -> None:
        """Stops the claim loop (its items' leases run out) and closes the pool."""
        if self._loop is not None:
            self._loop.cancel()
            await asyncio.gather(self._loop, return_exceptions=True)
        for client, _ in self._clients.values():
            with contextlib.suppress(Exception):
                await client.__aexit__(None, None, None)
        self._clients.clear()
        await self._pool.close()

    @contextlib.asynccontextmanager
    async def _s3(self, bucket: str) -> AsyncIterator[Any]:
        """This replica's connection to ``bucket``, shared by the items listing it."""
        async with self._clients_lock:
            entry = self._clients.pop(bucket, None)
            if entry is None:
                s = self.settings
                client = s3_client(self._policy.s3, bucket, concurrency=s.slots * s.item_concurrency)
                entry = [await client.__aenter__(), 0]
            entry[1] += 1
            self._clients[bucket] = entry  # the most recently used last
        try:
            yield entry[0]
        finally:
            entry[1] -= 1
            idle = [b for b, e in self._clients.items() if e[1] == 0]
            for b in idle[: max(0, len(self._clients) - _MAX_CLIENTS)]:
                with contextlib.suppress(Exception):
                    await self._clients.pop(b)[0].__aexit__(None, None, None)

    # -- the coordinator ---------------------------------------------------------------------

    async def __call__(self, plan: S3Plan, writer: Any) -> int | None:
        s = self.settings
        if plan.estimate() < s.min_objects:
            return None
        ranges = plan.ranges(s.items)
        if len(ranges) < 2:
            return None
        job = uuid.uuid4()
        spec = {
            "uri": plan.uri,
            "bucket": plan.bucket,
            "prefix": plan.prefix,
            "path_prefix": plan.path_prefix,
            "versioned": plan.versioned,
            "max_objects": plan.max_objects,
        }
        async with _database("recording the job"), self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO reference_fanout_jobs (id, spec, coordinator) VALUES ($1, $2, $3)",
                job,
                json.dumps(spec),
                self.replica,
            )
            await conn.executemany(
                "INSERT INTO reference_fanout_items (job_id, item, units) VALUES ($1, $2, $3)",
                [(job, i, json.dumps(r)) for i, r in enumerate(ranges)],
            )
        log.info("reference %s: %d ranges fanned out as job %s", plan.uri, len(ranges), job)
        self._wake.set()
        # The heartbeat runs for the job's whole life, the merge included: a
        # merge longer than stale_after_s must not let a sweep delete the segments it reads.
        heartbeat = asyncio.create_task(self._heartbeat(job), name=f"depot-fanout-heartbeat-{job}")
        try:
            rows = await self._wait(job, plan)
            total = sum(int(r["objects"]) for r in rows)
            if total > plan.max_objects:
                raise TooManyObjects(plan.uri, plan.max_objects)
            for r in rows:
                await self._copy(r["segment_key"], writer)
            return total
        finally:
            heartbeat.cancel()
            await asyncio.gather(heartbeat, return_exceptions=True)
            # Also when cancelled (nobody follows the listing): the job's
            # items stop being claimed and their listings stop at their next renewal.
            await asyncio.shield(self._drop(job))

    async def _heartbeat(self, job: uuid.UUID) -> None:
        """Renews the job's heartbeat every third of a lease until cancelled."""
        while True:
            await asyncio.sleep(self.settings.lease_s / 3)
            try:
                await self._pool.execute("UPDATE reference_fanout_jobs SET heartbeat_at = now() WHERE id = $1", job)
            except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
                # A hiccup: the sweep waits 10 leases, so the next renewal is in time.
                log.warning("reference fan-out job %s: renewing its heartbeat failed: %s", job, type(e).__name__)

    async def _wait(self, job: uuid.UUID, plan: S3Plan) -> list[asyncpg.Record]:
        s = self.settings
        while True:
            async with _database("following the job"):
                rows = await self._pool.fetch(
                    "SELECT item, state, segment_key, objects, error, attempts, "
                    "lease_until IS NOT NULL AND lease_until < now() AS expired "
                    "FROM reference_fanout_items WHERE job_id = $1 ORDER BY item",
                    job,
                )
            for r in rows:
                if r["state"] == "failed":
                    raise _failure_error(r["error"], plan, r["item"])
                if r["state"] == "pending" and r["attempts"] >= s.max_attempts and r["expired"]:
                    raise Unavailable(
                        f"{plan.uri}: key range {r['item']} was claimed {r['attempts']} times and never finished"
                    )
            if rows and all(r["state"] == "done" for r in rows):
                return rows
            await asyncio.sleep(s.poll_s)

    async def _copy(self, key: str, writer: Any) -> None:
        """Appends one segment's entries to the reference's writer."""
        path = self._store.local_path(key)
        fetched = None
        if path is None:
            fetched = self._store.staging.new_file("fanout-")
            await self._store.get_to_file(key, Path(fetched))
            path = fetched
        try:
            await asyncio.to_thread(_append, path, writer)
        finally:
            if fetched is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(fetched)

    async def _drop(self, job: uuid.UUID) -> None:
        try:
            keys = await self._pool.fetch(
                "WITH gone AS (DELETE FROM reference_fanout_jobs WHERE id = $1 RETURNING id) "
                "SELECT segment_key FROM reference_fanout_items WHERE job_id IN (SELECT id FROM gone) "
                "AND segment_key IS NOT NULL",
                job,
            )
            await self._delete_segments([r["segment_key"] for r in keys])
        except Exception:  # the stale-job sweep of any replica deletes it later
            log.warning("reference fan-out job %s: cleanup failed; left to the stale-job sweep", job, exc_info=True)

    async def _delete_segments(self, keys: list[str]) -> None:
        for key in keys:
            try:
                await self._store.delete(key)
            except Exception:  # litter under ~fanout/, never read: not worth failing a listing for
                log.warning("reference fan-out: deleting segment %s failed", key, exc_info=True)

    # -- every replica: claiming and listing items -------------------------------------------

    async def _claim_loop(self) -> None:
        s = self.settings
        running: set[asyncio.Task[None]] = set()
        swept = 0.0
        try:
            while True:
                claim = None
                if len(running) < s.slots:
                    try:
                        claim = await self._claim()
                        if time.monotonic() - swept > s.stale_after_s / 4:
                            swept = time.monotonic()
                            await self._sweep_stale()
                    except Exception:
                        # Database down, or not migrated yet (0008): quietly, not every poll.
                        log.warning("reference fan-out: claiming failed; retrying in 5 s", exc_info=True)
                        await asyncio.sleep(5)
                if claim is not None:
                    task = asyncio.create_task(self._work(claim), name=f"depot-fanout-{claim.job}-{claim.item}")
                    running.add(task)
                    task.add_done_callback(running.discard)
                    continue
                self._wake.clear()
                waits: list[asyncio.Future[Any]] = [asyncio.ensure_future(self._wake.wait()), *running]
                await asyncio.wait(waits, timeout=s.poll_s, return_when=asyncio.FIRST_COMPLETED)
                waits[0].cancel()
        finally:
            for t in running:
                t.cancel()
            await asyncio.gather(*running, return_exceptions=True)

    async def _claim(self) -> _Claim | None:
        row = await self._pool.fetchrow(
            """
            UPDATE reference_fanout_items i
            SET claimed_by = $1, claim = $2, attempts = i.attempts + 1,
                lease_until = now() + make_interval(secs => $3)
            FROM reference_fanout_jobs j
            WHERE j.id = i.job_id AND (i.job_id, i.item) = (
                SELECT job_id, item FROM reference_fanout_items
                WHERE state = 'pending' AND (lease_until IS NULL OR lease_until < now()) AND attempts < $4
                ORDER BY lease_until NULLS FIRST, job_id, item
                LIMIT 1 FOR UPDATE SKIP LOCKED)
            RETURNING i.job_id, i.item, i.claim, i.units, j.spec
            """,
            self.replica,
            uuid.uuid4(),
            self.settings.lease_s,
            self.settings.max_attempts,
        )
        if row is None:
            return None
        return _Claim(row["job_id"], row["item"], row["claim"], json.loads(row["units"]), json.loads(row["spec"]))

    async def _sweep_stale(self) -> None:
        """Jobs whose coordinator stopped following them, and their segments."""
        rows = await self._pool.fetch(
            "WITH gone AS (DELETE FROM reference_fanout_jobs "
            "WHERE heartbeat_at < now() - make_interval(secs => $1) RETURNING id) "
            "SELECT segment_key FROM reference_fanout_items WHERE job_id IN (SELECT id FROM gone) "
            "AND segment_key IS NOT NULL",
            self.settings.stale_after_s,
        )
        await self._delete_segments([r["segment_key"] for r in rows])

    async def _work(self, c: _Claim) -> None:
        """Lists one claimed item into a segment and records the outcome."""
        try:
            result = await self._list_renewing(c)
            if result is None:  # another replica owns the item now; a segment stored meanwhile is litter
                await self._delete_segments([c.segment_key])
            else:
                await self._finish(c, "done", objects=result[0], size=result[1])
        except asyncio.CancelledError:
            raise
        except DepotError as e:  # the listing's answer: the coordinator raises it
            await self._fail(c, _failure_record(e))
        except Exception:
            # Not the listing's answer (this replica's disk or database): let
            # another replica try at once; attempts bound the retries.
            log.warning("fan-out item %s/%d failed here; released", c.job, c.item, exc_info=True)
            await self._delete_segments([c.segment_key])
            with contextlib.suppress(Exception):
                await self._pool.execute(
                    "UPDATE reference_fanout_items SET lease_until = now() "
                    "WHERE job_id = $1 AND item = $2 AND claim = $3",
                    c.job,
                    c.item,
                    c.claim,
                )

    async def _list_renewing(self, c: _Claim) -> tuple[int, int] | None:
        """The item's (objects, bytes), renewing the lease meanwhile; None when the claim was lost."""
        listing = asyncio.create_task(self._list(c))
        try:
            while True:
                done, _ = await asyncio.wait([listing], timeout=self.settings.lease_s / 3)
                if done:
                    return listing.result()
                if not await self._renew(c):
                    log.info("fan-out item %s/%d: claim lost; stopping", c.job, c.item)
                    return None
        finally:
            if not listing.done():
                listing.cancel()
                await asyncio.gather(listing, return_exceptions=True)

    async def _fail(self, c: _Claim, error: str) -> None:
        try:
            await self._finish(c, "failed", error=error)
        except Exception:  # the lease runs out and another replica meets the same answer
            log.warning("fan-out item %s/%d: recording its failure failed", c.job, c.item, exc_info=True)

    async def _renew(self, c: _Claim) -> bool:
        with contextlib.suppress(Exception):  # a database hiccup: the lease may still hold
            status = await self._pool.execute(
                "UPDATE reference_fanout_items SET lease_until = now() + make_interval(secs => $4) "
                "WHERE job_id = $1 AND item = $2 AND claim = $3 AND state = 'pending'",
                c.job,
                c.item,
                c.claim,
                self.settings.lease_s,
            )
            return bool(status != "UPDATE 0")
        return True

    async def _list(self, c: _Claim) -> tuple[int, int]:
        spec = c.spec
        buckets = self._policy.buckets
        if "*" not in buckets and spec["bucket"] not in buckets:
            raise PermissionDenied(f"bucket {spec['bucket']!r} is not one this replica may list")
        plan = S3Plan(
            spec["uri"],
            spec["bucket"],
            spec["prefix"],
            spec["path_prefix"],
            spec["versioned"],
            spec["max_objects"],
            units_from_json(c.units),
        )
        path = self._store.staging.new_file("fanout-")
        try:
            with open(path, "wb") as f:
                writer = ManifestWriter(f, "md5")
                async with self._s3(plan.bucket) as http:
                    await write_s3_units(plan, writer, http=http, concurrency=self.settings.item_concurrency)
                summary = writer.close()
            await self._store.put_staged(c.segment_key, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        return summary.count, summary.total_size

    async def _finish(
        self, c: _Claim, state: str, *, objects: int = 0, size: int = 0, error: str | None = None
    ) -> None:
        status = await self._pool.execute(
            "UPDATE reference_fanout_items SET state = $4, segment_key = $5, objects = $6, bytes = $7, error = $8 "
            "WHERE job_id = $1 AND item = $2 AND claim = $3 AND state = 'pending'",
            c.job,
            c.item,
            c.claim,
            state,
            c.segment_key if state == "done" else None,
            objects,
            size,
            error,
        )
        if status == "UPDATE 0" and state == "done":  # taken over, or the job is gone
            await self._delete_segments([c.segment_key])


def _failure_record(e: DepotError) -> str:
    """An item's failure as its ``error`` column holds it: the domain error's kind and words."""
    kind = next(c.__name__ for c in type(e).__mro__ if _KINDS.get(c.__name__) is c)
    record: dict[str, Any] = {
        "kind": kind,
        "message": e.message,
        "field": e.field,
        "reason": ErrorReason.Name(e.reason),
    }
    if isinstance(e, S3Unavailable):
        record["code"] = e.code
    return json.dumps(record)


def _failure_error(error: str | None, plan: S3Plan, item: int) -> DepotError:
    """The domain error an item failed with (see ``_failure_record``), to raise in the coordinator."""
    try:
        record = json.loads(error or "")
    except ValueError:
        record = None
    if not isinstance(record, dict) or record.get("kind") not in _KINDS:  # a replica of an older release
        return Unavailable(f"{plan.uri}: listing key range {item} failed: {error}")
    cls = _KINDS[record["kind"]]
    if cls is TooManyObjects:
        return TooManyObjects(plan.uri, plan.max_objects)
    message = str(record.get("message", ""))
    if cls is S3Unavailable:
        return S3Unavailable(message, bucket=plan.bucket, code=str(record.get("code", "")))
    err = cls(message, field=record.get("field"))
    with contextlib.suppress(ValueError):  # a reason this release does not know: the class's own
        err.reason = ErrorReason.Value(str(record.get("reason", "")))
    return err


def _append(path: str, writer: Any) -> None:
    with open(path, "rb") as f:
        for batch in ManifestReader(f).batches():
            writer.add_many(batch)


async def open_fanout(
    database_url: str, store: BlobStore, policy: ReferencePolicy, settings: FanOutSettings
) -> tuple[ReferenceFanOut, ReferencePolicy]:
    """Connects, starts the claim loop; returns it and ``policy`` listing through it."""
    async with _database("connecting"):
        pool = await asyncpg.create_pool(database_url, min_size=1, max_size=settings.pool_size, command_timeout=30)
    fanout = ReferenceFanOut(pool, store, policy, settings)
    fanout.start()
    return fanout, replace(policy, fan_out=fanout)


__all__ = ["FanOutSettings", "ReferenceFanOut", "open_fanout"]
