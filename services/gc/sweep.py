"""The blob collector: mark, then sweep the store's managed namespace (domain; no grpc).

One pass (docs/gc.md has the safety argument):

1. Undo what a crashed pass left half done (``store.recover_sweep``) and
   start from an empty work dir.
2. Mark (:mod:`.mark`): every key the roots reach, sorted on disk.
3. Sweep: list ``<entity>/blobs/`` and ``<entity>/manifests/`` of each
   entity in key order and merge-join the listing with the sorted marks.
   A key is garbage only if it is unmarked AND was last modified before
   ``started - grace`` (``started``: when this pass began, before the
   roots were read). Garbage is deleted in batches of 1,000.

Nothing outside those two prefixes of a valid entity name is ever listed,
so the staging dir, the sweep's own trash and every object behind a
reference are out of reach by construction. Entities sort by their key
prefix ``name/`` (not by name: "a.b/" < "a/"), so the listings of all
entities, concatenated, are in the marks' order.

Restartable: a pass changes the store only by deleting garbage, and a key
deleted twice is deleted; a crash mid-pass leaves garbage for the next one.
"""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import asyncpg

from depot.services.manifest.public import BlobStore, StoredObject

from .mark import Mark

log = logging.getLogger(__name__)

# Keys per delete request (S3 DeleteObjects takes at most 1,000).
DELETE_BATCH = 1000
# Errors kept in a result (the rest are counted in the last line).
MAX_ERRORS = 100
# The entity name rule (depot.core.names): what else sits at the store's
# root (staging, the sweep's trash) is never an entity.
_ENTITY = re.compile(r"[A-Za-z0-9_.\-]{1,128}")
# The work dir's subdirectory a pass owns (removed and made anew at start).
_PASS_DIR = "depot-gc-mark"


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
        """One pass over ``entity`` ('' = every entity the store holds)."""
        # Taken before anything is read: the age cutoff is relative to it.
        started = time.time()
        result = SweepResult()
        if entity and not _ENTITY.fullmatch(entity):
            result.error(f"invalid entity name {entity!r}")
            return result
        if not dry_run:
            put_back = await self._store.recover_sweep()
            if put_back:
                log.info("gc: put back %d key(s) an interrupted sweep had moved aside", put_back)
        work = await asyncio.to_thread(_fresh_dir, self._work_dir / _PASS_DIR)
        try:
            entities = await self._entities(entity)
            t = time.monotonic()
            marked = await Mark(self._pool, self._store, self._grace_s, work).run(entity, entities, started)
            result.mark_s = time.monotonic() - t
            for name, why in sorted(marked.failed.items()):
                result.error(f"entity {name} not swept: {why}")
            t = time.monotonic()
            marks = _Marks(marked.keys.sorted())
            cutoff = started - self._grace_s
            for name in entities:
                if name not in marked.failed:
                    await self._sweep_entity(name, marks, cutoff, dry_run, result)
            result.sweep_s = time.monotonic() - t
        finally:
            await asyncio.to_thread(shutil.rmtree, work, True)
        return result

    async def _entities(self, entity: str) -> list[str]:
        names = [n for n in await self._store.top_names() if _ENTITY.fullmatch(n) and n not in (".", "..")]
        if entity:
            names = [n for n in names if n == entity]
        return sorted(names, key=lambda n: n + "/")

    async def _sweep_entity(
        self, entity: str, marks: _Marks, cutoff: float, dry_run: bool, result: SweepResult
    ) -> None:
        batch: list[StoredObject] = []
        # One delete request in flight while the listing goes on: the two
        # wait on different things (S3 round trips, or the filesystem).
        deleting: asyncio.Task[None] | None = None

        async def flush(objs: list[StoredObject]) -> None:
            nonlocal deleting
            if deleting is not None:
                await deleting
            deleting = asyncio.ensure_future(self._delete(objs, cutoff, dry_run, result))

        try:
            # "blobs/" < "manifests/": the two listings in this order are in key order.
            for prefix in (f"{entity}/blobs/", f"{entity}/manifests/"):
                async for page in self._store.list_sorted(prefix):
                    result.blobs_scanned += len(page)
                    unmarked = await asyncio.to_thread(marks.unmarked, page)
                    batch.extend(o for o in unmarked if o.mtime < cutoff)
                    while len(batch) >= DELETE_BATCH:
                        await flush(batch[:DELETE_BATCH])
                        batch = batch[DELETE_BATCH:]
            if batch:
                await flush(batch)
        finally:
            if deleting is not None:
                await deleting

    async def _delete(self, objs: list[StoredObject], cutoff: float, dry_run: bool, result: SweepResult) -> None:
        if dry_run:
            deleted = [o.key for o in objs]
        else:
            try:
                done = await self._store.delete_many([o.key for o in objs], cutoff)
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


def _fresh_dir(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


__all__ = ["BlobCollector", "SweepResult"]
