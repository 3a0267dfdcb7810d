"""The mark: every store key a root reaches, sorted, on disk (domain; no grpc).

Roots are the manifests metadata's remaining version rows name
(``metadata.public.roots``: live, deleted in grace, pending) and every
stored manifest younger than the grace period (built for a commit still in
flight). A root marks its own key and the blob key of each uploaded file it
lists; reference entries (``s3://``, ``gs://``, ``https://``, ``file://``)
name the user's objects, not ours, and mark nothing. Manifests never point
at each other (``include_manifests`` copies entries), so the mark is one
level deep.

Keys go into an :class:`ExternalSort` as the manifests stream through the
native decoder, so memory is one decoded block plus one sorted run,
whatever the number of live blobs. A root that cannot be read (missing,
corrupt, unreachable) makes its entity's mark incomplete: that entity is
reported and not swept in this pass. A failure of the sort itself (its work
dir full or unwritable: :class:`SortFailed`) is no one entity's: the keys
it held may be any entity's, so it propagates and the pass sweeps nothing.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from asyncpg.pool import PoolConnectionProxy

from depot.core.hashing import ALGORITHMS
from depot.native import ManifestReader
from depot.services.manifest.public import BlobStore, manifest_key
from depot.services.metadata.public import roots

from .extsort import ExternalSort, SortFailed

_BLOB_ALGORITHMS = frozenset(ALGORITHMS)


@dataclass
class Marked:
    """A finished mark: the sorted keys, and the entities whose mark is incomplete."""

    keys: ExternalSort
    # Entity -> why its mark is incomplete (it must not be swept).
    failed: dict[str, str] = field(default_factory=dict)
    manifests: int = 0


def blob_keys(entity: str, f: BinaryIO) -> Iterator[list[str]]:
    """The blob key of every uploaded file the manifest in ``f`` lists, a block at a time (blocking).

    The key layout is blobs.blob_key's, spelled out here on raw digests:
    building a BlobId per entry costs more than the decode itself.
    """
    for batch in ManifestReader(f).batches():
        keys = []
        for e in batch:
            if e.ref or e.algorithm not in _BLOB_ALGORITHMS:
                continue
            try:
                raw = base64.b64decode(e.digest, validate=True)
            except (binascii.Error, ValueError):
                continue
            if len(raw) != 16:
                continue
            h = raw.hex()
            keys.append(f"{entity}/blobs/{e.algorithm}/{h[:2]}/{h}")
        yield keys


class Mark:
    """One pass's mark over ``entities`` (names metadata's entities table holds) of ``store``.

    ``conn`` reads the roots; it must not be in a transaction.
    """

    def __init__(self, conn: PoolConnectionProxy, store: BlobStore, grace_s: float, work_dir: Path) -> None:
        self._conn = conn
        self._store = store
        self._grace_s = grace_s
        self._dir = work_dir

    async def run(self, entity: str, entities: list[str], started: float) -> Marked:
        """Marks from the database roots of ``entity`` ('' = all) and the young manifests of ``entities``."""
        marked = Marked(ExternalSort(self._dir))
        in_scope = set(entities)
        # Closed at once on an error, ending its transaction before the conn is used again.
        async with contextlib.aclosing(roots.manifest_roots(self._conn, entity)) as batches:
            async for batch in batches:
                for owner, manifest_id in batch:
                    if owner in in_scope:
                        await self._mark_manifest(marked, owner, manifest_id)
        young = started - self._grace_s
        for name in entities:
            async for page in self._store.list_sorted(f"{name}/manifests/"):
                for obj in page:
                    if obj.mtime >= young:
                        await self._mark_manifest(marked, name, obj.key.rsplit("/", 1)[-1])
        return marked

    async def _mark_manifest(self, marked: Marked, entity: str, manifest_id: str) -> None:
        if entity in marked.failed:
            return
        try:
            key = manifest_key(entity, manifest_id)
        except Exception:  # noqa: BLE001 - a row with a bad id: the entity is not swept
            marked.failed[entity] = f"version row names an invalid manifest id {manifest_id!r}"
            return
        marked.keys.add((key,))
        marked.manifests += 1
        try:
            await self._read_keys(marked, entity, key)
        except SortFailed:
            raise  # not this entity's: the whole mark is incomplete
        except Exception as exc:  # noqa: BLE001 - reported; the entity is not swept
            marked.failed[entity] = f"cannot read manifest {key}: {type(exc).__name__}: {exc}"

    async def _read_keys(self, marked: Marked, entity: str, key: str) -> None:
        local = self._store.local_path(key)
        copy = None
        if local is None:
            copy = str(self._dir / f"manifest-{time.monotonic_ns()}")
            await self._store.get_to_file(key, Path(copy))
            local = copy
        try:
            await asyncio.to_thread(_add_all, marked.keys, entity, local)
        finally:
            if copy is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(copy)


def _add_all(keys: ExternalSort, entity: str, path: str) -> None:
    with open(path, "rb") as f:
        for batch in blob_keys(entity, f):
            keys.add(batch)


__all__ = ["Mark", "Marked", "blob_keys"]
