"""What the blob collector asks of a store: sorted listings, age refreshes, safe batched deletes.

The GC (``services/gc/sweep.py``) merge-joins a store's sorted listing with
its sorted mark stream, so the listing must come in the byte order of the
keys, page by page, with each object's size and modification time. S3 lists
in that order already; a directory is walked one directory at a time, each
directory's names sorted (a blob directory holds at most a few thousand
names at 1M blobs per entity and algorithm: 256 fan-out directories).

Deletes are where a live byte could be lost, so each backend does the most
it can (the whole argument is in docs/gc.md):

- A local store moves each key into a per-pass trash directory first, then
  looks at the moved inode's mtime: the manifest service's dedup refresh
  (:func:`refresh_local`) touches a blob through its path, so a refresh that
  landed before the move shows on the inode (the key is moved back), and
  one after it finds no file and answers "missing" (the client uploads
  again). Only then is the inode unlinked. What a crash leaves in the trash
  is moved back at the start of the next pass (a garbage key moved back is
  simply deleted again by that pass).
- S3 has no rename: DeleteObjects (1,000 keys per request, retried with
  backoff on SlowDown and 5xx, per-key errors reported) deletes what the
  listing showed old. When the listing is more than RECHECK_AFTER_S old by
  the time of the request, each key's LastModified is read again (HEAD, in
  parallel) and a key refreshed since is kept. A refresh landing between
  that HEAD and the delete request is the one window left (docs/gc.md says
  how small, and what an operator enables against it).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import secrets
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# Objects per listing page handed to the GC (S3 answers 1,000 per request).
PAGE = 1000
# S3 DeleteObjects takes at most this many keys.
S3_DELETE_BATCH = 1000
# Retries of one DeleteObjects request on SlowDown/5xx, with exponential
# backoff from S3_BACKOFF_S (full jitter), before its keys are reported as errors.
S3_DELETE_ATTEMPTS = 6
S3_BACKOFF_S = 0.2
# A listing older than this when its DeleteObjects is sent is checked again
# key by key (HEAD): a dedup refresh may have landed meanwhile.
RECHECK_AFTER_S = 1.0
# Worker threads deleting one batch of a local store.
DELETE_THREADS = 4
# Where a local store's sweep moves keys before unlinking them: '~' is
# outside the entity name rule, so no entity's keys can live there.
TRASH = "~gc-trash"
_RETRYABLE = frozenset({"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "Throttling"})


@dataclass(frozen=True)
class StoredObject:
    """One listed object: its store key, size in bytes and last-modified time (Unix seconds)."""

    key: str
    size: int
    mtime: float


@dataclass
class Deleted:
    """What one ``delete_many`` did: keys deleted, keys kept because they were refreshed, per-key errors."""

    keys: list[str] = field(default_factory=list)
    refreshed: list[str] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)


def joined(parts: Sequence[Deleted]) -> Deleted:
    """One :class:`Deleted` of several."""
    out = Deleted()
    for part in parts:
        out.keys += part.keys
        out.refreshed += part.refreshed
        out.errors += part.errors
    return out


# --- local directory ---------------------------------------------------------


def walk_local(root: str, prefix: str) -> Iterator[list[StoredObject]]:
    """Every file under ``root/prefix`` (``prefix`` ends with '/'), in key order, in pages.

    Blocking (each ``next`` belongs in a worker thread); a directory at a
    time, so what it holds at once is one directory's names.
    """
    rel = prefix.rstrip("/")
    try:
        entries = list(os.scandir(f"{root}/{rel}"))
    except (FileNotFoundError, NotADirectoryError):
        return
    page: list[StoredObject] = []
    # Keys compare as "<dir>/<name>..." strings: a subdirectory "a" sorts
    # as "a/" against a sibling file "a.b", so walk by that key, not the name.
    for entry in sorted(entries, key=lambda e: e.name + "/" if e.is_dir(follow_symlinks=False) else e.name):
        key = f"{rel}/{entry.name}"
        if entry.is_dir(follow_symlinks=False):
            if page:
                yield page
                page = []
            yield from walk_local(root, key + "/")
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue  # deleted meanwhile
        page.append(StoredObject(key, st.st_size, st.st_mtime))
        if len(page) >= PAGE:
            yield page
            page = []
    if page:
        yield page


async def iter_local(root: str, prefix: str) -> AsyncIterator[list[StoredObject]]:
    """:func:`walk_local` off the event loop, a page per worker-thread hop."""
    pages = walk_local(root, prefix)
    while (page := await asyncio.to_thread(next, pages, None)) is not None:
        yield page


def refresh_local(paths: Sequence[str], older_than: float) -> list[bool]:
    """For each path: present, with an mtime at or after ``older_than`` (touched when it was older).

    A touch that finds no file (the sweep moved it aside meanwhile) is
    "missing": the caller uploads the bytes again instead of relying on them.
    """
    out = []
    for path in paths:
        try:
            if os.stat(path).st_mtime < older_than:
                os.utime(path)
            out.append(True)
        except FileNotFoundError:
            out.append(False)
    return out


def recover_trash(root: str) -> int:
    """Moves back what a crashed pass left in the trash; returns how many keys."""
    trash = f"{root}/{TRASH}"
    moved = 0
    try:
        passes = os.listdir(trash)
    except FileNotFoundError:
        return 0
    for name in passes:
        pass_dir = f"{trash}/{name}"
        for entry in os.listdir(pass_dir):
            _move_back(root, f"{pass_dir}/{entry}", _key_of(entry))
            moved += 1
        with contextlib.suppress(OSError):
            os.rmdir(pass_dir)
    return moved


def new_trash(root: str) -> str:
    path = f"{root}/{TRASH}/{os.getpid()}-{secrets.token_hex(4)}"
    os.makedirs(path)
    return path


def _trash_name(key: str) -> str:
    # Keys hold no '%' (entity names, algorithm names, hex digits), so this is reversible.
    return key.replace("/", "%")


def _key_of(name: str) -> str:
    return name.replace("%", "/")


def _move_back(root: str, moved: str, key: str) -> None:
    dest = f"{root}/{key}"
    try:
        # A re-upload of the same content may have landed meanwhile: same
        # bytes (the key is their digest), so replacing it loses nothing.
        os.replace(moved, dest)
    except FileNotFoundError:
        if not os.path.exists(moved):
            return
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        os.replace(moved, dest)


def delete_local(root: str, trash: str, keys: Sequence[str], cutoff: float) -> Deleted:
    """Deletes keys whose mtime is still before ``cutoff`` once moved aside (blocking)."""
    out = Deleted()
    for key in keys:
        src = f"{root}/{key}"
        moved = f"{trash}/{_trash_name(key)}"
        try:
            os.rename(src, moved)
        except FileNotFoundError:
            out.keys.append(key)  # already gone: deleting twice is deleting
            continue
        except OSError as exc:
            out.errors.append((key, f"{type(exc).__name__}: {exc.strerror or exc}"))
            continue
        try:
            if os.stat(moved).st_mtime >= cutoff:
                # Refreshed by a dedup check before the move: live again.
                _move_back(root, moved, key)
                out.refreshed.append(key)
                continue
            os.unlink(moved)
            out.keys.append(key)
        except OSError as exc:
            out.errors.append((key, f"{type(exc).__name__}: {exc.strerror or exc}"))
            with contextlib.suppress(OSError):
                _move_back(root, moved, key)
    return out


# --- S3 ----------------------------------------------------------------------


def parse_timestamp(value: str) -> datetime:
    """botocore's timestamp parser, fast for S3's ISO 8601 listing times.

    botocore parses every ``LastModified`` of a listing with dateutil, ~100
    us each: most of an S3 sweep's CPU (a profile of 22,000 listed keys:
    90 of 153 s). S3 writes them as ``2024-01-01T00:00:00.000Z``, which
    ``datetime.fromisoformat`` reads in a few hundred nanoseconds; anything
    else (HEAD's RFC 1123 ``Last-Modified``) goes to botocore's own parser.
    """
    try:
        parsed = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        parsed = None
    if parsed is not None and parsed.tzinfo is not None:
        return parsed
    from botocore.utils import parse_timestamp as botocore_parse

    return botocore_parse(value)


async def iter_s3(client: Any, bucket: str, store_prefix: str, prefix: str) -> AsyncIterator[list[StoredObject]]:
    """ListObjectsV2 under ``prefix`` (a store key prefix), pages in key order."""
    strip = len(store_prefix) + 1 if store_prefix else 0
    full = f"{store_prefix}/{prefix}" if store_prefix else prefix
    paginator = client.get_paginator("list_objects_v2")
    async for resp in paginator.paginate(Bucket=bucket, Prefix=full):
        page = [
            StoredObject(o["Key"][strip:], int(o["Size"]), o["LastModified"].timestamp())
            for o in resp.get("Contents", ())
        ]
        if page:
            yield page


async def refresh_s3(client: Any, bucket: str, key: str, older_than: float, extra: dict[str, str]) -> bool:
    """Present, with LastModified at or after ``older_than`` (copied onto itself when it was older)."""
    try:
        head = await client.head_object(Bucket=bucket, Key=key)
    except client.exceptions.ClientError as e:
        if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    if head["LastModified"].timestamp() >= older_than:
        return True
    try:
        # A copy onto itself is S3's touch: it needs a changed directive,
        # so the object's own metadata is sent back with REPLACE.
        await client.copy_object(
            Bucket=bucket,
            Key=key,
            CopySource={"Bucket": bucket, "Key": key},
            MetadataDirective="REPLACE",
            Metadata=head.get("Metadata", {}),
            **extra,
        )
    except client.exceptions.ClientError as e:
        if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    return True


async def delete_s3(
    client: Any,
    bucket: str,
    store_prefix: str,
    keys: Sequence[str],
    cutoff: float,
    listed: float,
    concurrency: int,
) -> Deleted:
    """DeleteObjects in batches of 1,000, retrying SlowDown/5xx with backoff; per-key errors reported.

    Keys listed (at ``listed``) more than RECHECK_AFTER_S before their
    batch is sent are HEADed first: one modified at or after ``cutoff``
    since is kept (``refreshed``), one that cannot be checked is an error.
    """
    out = Deleted()
    for start in range(0, len(keys), S3_DELETE_BATCH):
        batch = list(keys[start : start + S3_DELETE_BATCH])
        full = {(f"{store_prefix}/{k}" if store_prefix else k): k for k in batch}
        if time.time() - listed > RECHECK_AFTER_S:
            full = await _still_old(client, bucket, full, cutoff, concurrency, out)
        if full:
            await _delete_batch(client, bucket, full, out)
    return out


async def _still_old(
    client: Any, bucket: str, full: dict[str, str], cutoff: float, concurrency: int, out: Deleted
) -> dict[str, str]:
    """The keys of ``full`` still modified before ``cutoff``; the others are recorded in ``out``."""
    gate = asyncio.Semaphore(concurrency)

    async def modified(s3_key: str) -> float | None | BaseException:
        async with gate:
            try:
                head = await client.head_object(Bucket=bucket, Key=s3_key)
            except client.exceptions.ClientError as e:
                if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                    return None
                failed: BaseException = e
                return failed
            except Exception as e:  # noqa: BLE001 - the key is reported and kept
                return e
            return float(head["LastModified"].timestamp())

    answers = await asyncio.gather(*(modified(k) for k in full))
    keep: dict[str, str] = {}
    for (s3_key, key), answer in zip(full.items(), answers, strict=True):
        if answer is None:
            out.keys.append(key)  # already gone: deleting twice is deleting
        elif isinstance(answer, BaseException):
            out.errors.append((key, f"HEAD before delete: {type(answer).__name__}: {answer}"))
        elif answer >= cutoff:
            out.refreshed.append(key)  # a dedup refresh since the listing: live again
        else:
            keep[s3_key] = key
    return keep


async def _delete_batch(client: Any, bucket: str, full: dict[str, str], out: Deleted) -> None:
    pending = dict(full)
    for attempt in range(S3_DELETE_ATTEMPTS):
        try:
            resp = await client.delete_objects(
                Bucket=bucket, Delete={"Objects": [{"Key": k} for k in pending], "Quiet": True}
            )
        except client.exceptions.ClientError as e:
            code = e.response.get("Error", {}).get("Code", "")
            status = int(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
            if (code in _RETRYABLE or status >= 500) and attempt + 1 < S3_DELETE_ATTEMPTS:
                await asyncio.sleep(random.uniform(0, S3_BACKOFF_S * 2**attempt))
                continue
            out.errors.extend((k, f"DeleteObjects: {code or status}") for k in pending.values())
            return
        retry: dict[str, str] = {}
        failed: set[str] = set()
        for err in resp.get("Errors", ()):
            key = pending.get(err.get("Key", ""))
            if key is None:
                continue
            if err.get("Code") in _RETRYABLE and attempt + 1 < S3_DELETE_ATTEMPTS:
                retry[err["Key"]] = key
            else:
                out.errors.append((key, f"{err.get('Code')}: {err.get('Message', '')}"))
            failed.add(key)
        out.keys.extend(k for k in pending.values() if k not in failed)
        if not retry:
            return
        pending = retry
        await asyncio.sleep(random.uniform(0, S3_BACKOFF_S * 2**attempt))
    out.errors.extend((k, "DeleteObjects: retries exhausted") for k in pending.values())


__all__ = ["PAGE", "RECHECK_AFTER_S", "TRASH", "Deleted", "StoredObject"]
