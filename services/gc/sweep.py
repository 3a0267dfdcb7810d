"""The blob collector: mark, then sweep the store's managed namespace (domain; no grpc).

One pass (docs/gc.md has the safety argument):

1. Take the sweep lock (a session advisory lock on the connection the
   pass reads with), undo what a crashed pass left half done
   (``store.recover_sweep``) and start in a work dir of its own.
2. Mark (:mod:`.mark`): every key the roots reach, sorted on disk. A
   failure of the sort itself stops the pass before any delete.
3. Sweep: list ``<entity>/blobs/`` and ``<entity>/manifests/`` of each
   entity of metadata's ``entities`` table in key order and merge-join the
   listing with the sorted marks. A key is garbage only if it is unmarked
   AND was last modified before ``started - grace`` (``started``: when this
   pass began, before the roots were read). Each listing page's garbage is
   deleted when the page is done (at most 1,000 keys a request), after the
   lock is checked still held.

Nothing outside those two prefixes of an entity metadata knows is ever
listed, so the staging dir, the sweep's own trash, every object behind a
reference and any other folder at the store's root (a bucket shared with
user data) are out of reach by construction. Entities sort by their key
prefix ``name/`` (not by name: "a.b/" < "a/"), so the listings of all
entities, concatenated, are in the marks' order.

Restartable: a pass changes the store only by deleting garbage, and a key
deleted twice is deleted; a crash mid-pass leaves garbage for the next one.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import secrets
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from depot.services.manifest.public import BlobStore, StoredObject
from depot.services.metadata.public import housekeeping, roots

from .extsort import SortFailed
from .mark import Mark

log = logging.getLogger(__name__)

# Keys per delete request (S3 DeleteObjects takes at most 1,000).
DELETE_BATCH = 1000
# Errors kept in a result (the rest are counted in the last line).
MAX_ERRORS = 100
# The entity name rule (depot.core.names): what else sits at the store's
# root (staging, the sweep's trash) is never an entity.
_ENTITY = re.compile(r"[A-Za-z0-9_.\-]{1,128}")
# The work dir's subdirectories a pass owns: "<prefix>-<pid>-<random>", one
# per pass; those of earlier passes are removed by the next lock holder.
_PASS_DIR = "depot-gc-mark"
# Held by the pass that sweeps (one per database): it guards the work dir,
# the trash recovery and every delete batch.
_SWEEP_LOCK = 0x6465706F7473  # "depots"
# Whether this connection's session still holds the sweep lock (a bigint
# advisory key shows in pg_locks split in two 32-bit halves).
_LOCK_STILL_HELD = """
    SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted
        AND pid = pg_backend_pid() AND classid = $1::oid AND objid = $2::oid AND objsubid = 1)
"""


@dataclass
class SweepResult:
    """What a pass deleted (or, in a dry run, would delete)."""

    manifests_deleted: int = 0
    blobs_deleted: int = 0
    bytes_freed: int = 0
    # Objects listed in the managed namespace (blobs and manifests).
    blobs_scanned: int = 0
    mark_s: float = 0.0
    sweep_s: float = 0.0
    errors: list[str] = field(default_factory=list)

    def error(self, message: str) -> None:
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(message)
        elif len(self.errors) == MAX_ERRORS:
            self.errors.append("... more errors not shown")


class _Marks:
    """A cursor over the sorted marks, advanced by the sorted listing (blocking)."""

    def __init__(self, keys: Iterator[str]) -> None:
        self._keys = keys
        self._head: str | None = next(keys, None)

    def unmarked(self, page: list[StoredObject]) -> list[StoredObject]:
        out = []
        for obj in page:
            while self._head is not None and self._head < obj.key:
                self._head = next(self._keys, None)
            if self._head != obj.key:
                out.append(obj)
        return out


class BlobCollector:
    """Mark-and-sweep of one store's blobs and manifests against metadata's versions."""

    def __init__(self, pool: asyncpg.Pool, store: BlobStore, grace: float | timedelta, work_dir: Path) -> None:
        self._pool = pool
        self._store = store
        self._grace_s = grace.total_seconds() if isinstance(grace, timedelta) else float(grace)
        self._work_dir = work_dir

    async def run(self, entity: str, *, dry_run: bool) -> SweepResult:
        """One pass over ``entity`` ('' = every entity metadata knows)."""
        # Taken before anything is read: the age cutoff is relative to it.
        started = time.time()
        result = SweepResult()
        if entity and not _ENTITY.fullmatch(entity):
            result.error(f"invalid entity name {entity!r}")
            return result
        stopped = False
        try:
            async with self._pool.acquire() as conn, housekeeping.session_lock(conn, _SWEEP_LOCK) as held:
                if not held:
                    result.error("another blob sweep holds the sweep lock: nothing swept")
                    return result
                if not dry_run:
                    put_back = await self._store.recover_sweep()
                    if put_back:
                        log.info("gc: put back %d key(s) an interrupted sweep had moved aside", put_back)
                work = await asyncio.to_thread(_pass_dir, self._work_dir)
                try:
                    await self._mark_and_sweep(conn, entity, started, dry_run, work, result)
                except SortFailed as exc:
                    result.error(f"the mark's sort failed, nothing more swept: {exc}")
                except _LockLost as exc:
                    stopped = True
                    result.error(f"sweep stopped: {exc}")
                finally:
                    await asyncio.to_thread(shutil.rmtree, work, True)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
            # The lock's release on a connection already lost fails too:
            # what the pass did is in ``result``, and the server freed the lock.
            if not stopped:
                raise
        return result

    async def _mark_and_sweep(
        self, conn: PoolConnectionProxy, entity: str, started: float, dry_run: bool, work: Path, result: SweepResult
    ) -> None:
        names = await roots.entity_names(conn, entity)
        # The rule is checked again: a name that could escape its prefix is never listed.
        entities = sorted((n for n in names if _ENTITY.fullmatch(n) and n not in (".", "..")), key=lambda n: n + "/")
        t = time.monotonic()
        marked = await Mark(conn, self._store, self._grace_s, work).run(entity, entities, started)
        result.mark_s = time.monotonic() - t
        for name, why in sorted(marked.failed.items()):
            result.error(f"entity {name} not swept: {why}")
        t = time.monotonic()
        marks = _Marks(marked.keys.sorted())
        cutoff = started - self._grace_s
        try:
            for name in entities:
                if name not in marked.failed:
                    await self._sweep_entity(conn, name, marks, cutoff, dry_run, result)
        finally:
            result.sweep_s = time.monotonic() - t

    async def _sweep_entity(
        self,
        conn: PoolConnectionProxy,
        entity: str,
        marks: _Marks,
        cutoff: float,
        dry_run: bool,
        result: SweepResult,
    ) -> None:
        # One delete request in flight while the listing goes on: the two
        # wait on different things (S3 round trips, or the filesystem).
        deleting: asyncio.Task[None] | None = None

        async def flush(objs: list[StoredObject], listed: float) -> None:
            nonlocal deleting
            if deleting is not None:
                await deleting
                deleting = None
            await _check_lock(conn)
            deleting = asyncio.ensure_future(self._delete(objs, cutoff, listed, dry_run, result))

        try:
            # "blobs/" < "manifests/": the two listings in this order are in key order.
            for prefix in (f"{entity}/blobs/", f"{entity}/manifests/"):
                async for page in self._store.list_sorted(prefix):
                    listed = time.time()
                    result.blobs_scanned += len(page)
                    unmarked = await asyncio.to_thread(marks.unmarked, page)
                    garbage = [o for o in unmarked if o.mtime < cutoff]
                    # Sent when its page is done, never held across pages: the
                    # older a listing, the likelier a refresh landed since.
                    for i in range(0, len(garbage), DELETE_BATCH):
                        await flush(garbage[i : i + DELETE_BATCH], listed)
        finally:
            if deleting is not None:
                await deleting

    async def _delete(
        self, objs: list[StoredObject], cutoff: float, listed: float, dry_run: bool, result: SweepResult
    ) -> None:
        if dry_run:
            deleted = [o.key for o in objs]
        else:
            try:
                done = await self._store.delete_many([o.key for o in objs], cutoff, listed=listed)
            except Exception as exc:  # noqa: BLE001 - reported; the next pass retries these keys
                result.error(f"deleting {len(objs)} keys from {objs[0].key}: {type(exc).__name__}: {exc}")
                return
            for key, why in done.errors:
                result.error(f"{key}: {why}")
            deleted = done.keys
        sizes = {o.key: o.size for o in objs}
        for key in deleted:
            if "/manifests/" in key:
                result.manifests_deleted += 1
            else:
                result.blobs_deleted += 1
            result.bytes_freed += sizes.get(key, 0)


class _LockLost(Exception):
    """The session holding the sweep lock is gone: another pass may run now."""


async def _check_lock(conn: PoolConnectionProxy) -> None:
    try:
        held = await conn.fetchval(_LOCK_STILL_HELD, _SWEEP_LOCK >> 32, _SWEEP_LOCK & 0xFFFFFFFF)
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
        raise _LockLost(f"cannot tell whether the sweep lock is held: {type(exc).__name__}: {exc}") from exc
    if not held:
        raise _LockLost("the sweep lock is no longer held")


def _pass_dir(work_dir: Path) -> Path:
    """A new work dir for this pass; those of earlier passes (the caller holds the lock) are removed."""
    work_dir.mkdir(parents=True, exist_ok=True)
    for old in work_dir.glob(f"{_PASS_DIR}*"):
        shutil.rmtree(old, ignore_errors=True)
    path = work_dir / f"{_PASS_DIR}-{os.getpid()}-{secrets.token_hex(4)}"
    path.mkdir()
    return path


__all__ = ["BlobCollector", "SweepResult"]
