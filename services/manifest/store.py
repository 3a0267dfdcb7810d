"""Blob stores: where blobs and manifests live (local directory or S3).

Keys are relative ``/``-separated paths chosen by Depot itself (entity
namespace, algorithm, hex digest); they are still checked so that no key
can escape the store's root. Writes are atomic: a reader sees the whole
object or nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol
from urllib.parse import urlsplit

from depot.services.common.errors import InvalidArgument, NotFound

from . import sweeping
from .staging import DEFAULT_GRACE_S, Staging, storage_errors
from .sweeping import Deleted, StoredObject

CHUNK = 1 << 20
# ReadBlob's chunk: bigger messages mean fewer protobuf and HTTP/2 frames per
# GiB, but a chunk must stay under gRPC's default 4 MiB receive limit, which
# every client that did not raise it (the SDK allows 16 MiB) still has.
READ_CHUNK = 2 << 20
_WRITE_INLINE = 64 * 1024
# Concurrent requests of one batch against S3 (each is a HEAD, PUT or GET).
S3_BATCH_CONCURRENCY = 32
# Where LocalBlobStore stages writes before their atomic rename. Keys start
# with an entity name ([A-Za-z0-9_.-]{1,128}); '~' is outside that rule, so
# no entity's directory can be the staging area (it was ".tmp", a valid
# entity name: that entity's blobs sat inside it, and clearing stale staged
# files deleted them). Stores made before keep their old ".tmp": it holds at
# most stale staged files, or an entity of that name, and is left alone.
STAGING = "~staging"


def check_key(key: str) -> str:
    parts = key.split("/")
    if not key or key.startswith("/") or "\0" in key or any(p in ("", ".", "..") for p in parts) or parts[0] == STAGING:
        raise InvalidArgument(f"invalid blob key {key!r}")
    return key


class BatchTooLarge(Exception):
    """``get_many``'s blobs add up to more than its ``max_total`` (nothing was returned)."""


class BlobStore(Protocol):
    url: str
    # Where uploads and manifests are spooled before they are stored.
    staging: Staging

    async def exists(self, key: str) -> bool: ...

    async def exists_many(self, keys: Sequence[str]) -> list[bool]:
        """``exists`` of each key, in one round of I/O."""
        ...

    async def put_file(self, key: str, path: Path) -> None: ...

    async def put_staged(self, key: str, path: str) -> None:
        """Stores a file of ``staging`` under ``key``, consuming it."""
        ...

    def local_path(self, key: str) -> str | None:
        """The file holding ``key`` when the store is a directory, else None."""
        ...

    async def put_bytes(self, key: str, data: bytes) -> None: ...

    async def put_many(self, items: Sequence[tuple[str, bytes]]) -> list[bool]:
        """Stores each absent key (the keys are distinct); True where written,
        False where already stored. One round of I/O for the whole batch."""
        ...

    async def get_many(self, keys: Sequence[str], max_total: int) -> list[bytes | None]:
        """The bytes of each key (None when absent), in one round of I/O.

        Raises BatchTooLarge before holding more than ``max_total`` bytes.
        """
        ...

    async def get_to_file(self, key: str, path: Path) -> None: ...

    def read(self, key: str) -> AsyncIterator[bytes]: ...

    async def delete(self, key: str) -> None: ...

    async def aclose(self) -> None: ...

    # The blob collector's (services/gc/sweep.py; sweeping.py says why each is safe).

    async def refresh_many(self, keys: Sequence[str], older_than: float) -> list[bool]:
        """Whether each key is stored; one modified before ``older_than`` is
        touched first (the dedup age rule), and False if it vanished meanwhile."""
        ...

    def list_sorted(self, prefix: str) -> AsyncIterator[list[StoredObject]]:
        """The objects under ``prefix`` (ending with '/'), in key order, a page at a time."""
        ...

    async def delete_many(self, keys: Sequence[str], cutoff: float, *, listed: float = 0.0) -> Deleted:
        """Deletes keys the caller listed at time ``listed`` as modified before ``cutoff``.

        A key modified at or after ``cutoff`` since (a dedup refresh) is kept
        and reported refreshed; already gone counts as deleted.
        """
        ...

    async def recover_sweep(self) -> int:
        """Undoes what a crashed sweep left half done; returns how many keys were put back."""
        ...


class LocalBlobStore:
    """A directory; the default for laptops and tests."""

    def __init__(self, root: Path, staging_grace_s: float = DEFAULT_GRACE_S):
        self.root = root.resolve()
        self.url = self.root.as_uri()
        self.staging = Staging(self.root / STAGING, staging_grace_s)
        self.tmp = str(self.staging.path)
        # Batch writes name their temp files themselves: mkstemp's random
        # names cost more than the write of a 4 KiB blob. The pid and token
        # keep worker processes sharing this root apart; O_EXCL still guards.
        self._tmp_prefix = f"{self.tmp}/batch-{os.getpid()}-{secrets.token_hex(4)}-"
        self._tmp_seq = itertools.count()
        # The sweep's trash dir for this store object (created by the first delete_many).
        self._trash: str | None = None

    def _path(self, key: str) -> str:
        # check_key refuses absolute keys and '..'/'.'/empty components, so the
        # joined path stays under root lexically; the root itself is resolved
        # once, and Depot never creates symlinks inside it. A str, not a Path:
        # pathlib's joins were ~5% of the server's CPU on the commit path.
        return f"{self.root}/{check_key(key)}"

    async def exists(self, key: str) -> bool:
        # One stat: cheaper inline than a hop to a worker thread.
        return os.path.isfile(self._path(key))

    async def exists_many(self, keys: Sequence[str]) -> list[bool]:
        # A thousand stats in one hop: a coroutine per key (as ``exists``
        # inline) cost ~0.3 s per FindMissingBlobs of 1000 under load.
        paths = [self._path(key) for key in keys]
        return await asyncio.to_thread(lambda: [os.path.isfile(p) for p in paths])

    def local_path(self, key: str) -> str | None:
        return self._path(key)

    def _write_atomically(self, key: str, fill: Callable[[BinaryIO], object]) -> None:
        # Write a temp name inside the store, then rename: atomic on POSIX.
        dest = self._path(key)
        with storage_errors(self.tmp):
            fd, tmp = tempfile.mkstemp(dir=self.tmp)
        try:
            with storage_errors(tmp), os.fdopen(fd, "wb") as f:
                fill(f)
            self._rename(tmp, dest)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def _rename(self, tmp: str, dest: str) -> None:
        with storage_errors(dest):
            try:
                os.replace(tmp, dest)
            except FileNotFoundError:  # the first blob of its directory
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                os.replace(tmp, dest)

    async def put_staged(self, key: str, path: str) -> None:
        # The staging dir is on the blobs' filesystem: one rename, no copy.
        dest = self._path(key)
        try:
            await asyncio.to_thread(self._rename, path, dest)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            raise

    async def put_file(self, key: str, path: Path) -> None:
        def copy(out: BinaryIO) -> None:
            with open(path, "rb") as src:
                shutil.copyfileobj(src, out, CHUNK)

        await asyncio.to_thread(self._write_atomically, key, copy)

    async def put_bytes(self, key: str, data: bytes) -> None:
        if len(data) <= _WRITE_INLINE:
            # A small file is a handful of syscalls into the page cache; the
            # hop to a worker thread cost more CPU than the write itself
            # (measured on the commit path of bench/metadata.py).
            self._write_atomically(key, lambda out: out.write(data))
        else:
            await asyncio.to_thread(self._write_atomically, key, lambda out: out.write(data))

    async def put_many(self, items: Sequence[tuple[str, bytes]]) -> list[bool]:
        # The whole batch in one worker-thread hop: a thousand 4 KiB blobs
        # are a thousand stat/open/write/rename rounds, each a syscall that
        # releases the GIL, and one hop instead of a thousand.
        dests = [(self._path(key), data) for key, data in items]
        return await asyncio.to_thread(self._put_many, dests)

    def _put_many(self, items: list[tuple[str, bytes]]) -> list[bool]:
        created = []
        for dest, data in items:
            if os.path.isfile(dest):
                created.append(False)
                continue
            tmp = f"{self._tmp_prefix}{next(self._tmp_seq)}"
            with storage_errors(tmp):
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            try:
                with storage_errors(tmp):
                    try:
                        write_all(fd, data)
                    finally:
                        os.close(fd)
                self._rename(tmp, dest)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                raise
            created.append(True)
        return created

    async def get_many(self, keys: Sequence[str], max_total: int) -> list[bytes | None]:
        paths = [self._path(key) for key in keys]
        return await asyncio.to_thread(_read_files, paths, max_total)

    async def get_to_file(self, key: str, path: Path) -> None:
        src = self._path(key)
        try:
            with storage_errors(path):
                await asyncio.to_thread(shutil.copyfile, src, path)
        except FileNotFoundError:
            raise NotFound(f"blob {key} not found") from None

    async def read(self, key: str) -> AsyncIterator[bytes]:
        src = self._path(key)
        try:
            f = await asyncio.to_thread(open, src, "rb")
        except FileNotFoundError:
            raise NotFound(f"blob {key} not found") from None
        try:
            while chunk := await asyncio.to_thread(f.read, READ_CHUNK):
                yield chunk
        finally:
            f.close()

    async def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(os.unlink, self._path(key))

    async def refresh_many(self, keys: Sequence[str], older_than: float) -> list[bool]:
        paths = [self._path(key) for key in keys]
        return await asyncio.to_thread(sweeping.refresh_local, paths, older_than)

    def list_sorted(self, prefix: str) -> AsyncIterator[list[StoredObject]]:
        check_key(prefix.rstrip("/"))
        return sweeping.iter_local(str(self.root), prefix)

    async def delete_many(self, keys: Sequence[str], cutoff: float, *, listed: float = 0.0) -> Deleted:
        # The move aside checks each inode's mtime itself: ``listed`` is not needed.
        root = str(self.root)
        for key in keys:
            check_key(key)
        if self._trash is None:
            self._trash = await asyncio.to_thread(sweeping.new_trash, root)
        trash = self._trash
        # A few threads: each key is three metadata syscalls (rename, stat,
        # unlink) that wait on the filesystem with the GIL released.
        n = sweeping.DELETE_THREADS
        parts = await asyncio.gather(
            *(asyncio.to_thread(sweeping.delete_local, root, trash, keys[i::n], cutoff) for i in range(n))
        )
        return sweeping.joined(parts)

    async def recover_sweep(self) -> int:
        self._trash = None
        return await asyncio.to_thread(sweeping.recover_trash, str(self.root))

    async def aclose(self) -> None:
        return None


def write_all(fd: int, data: bytes | memoryview) -> None:
    """``os.write`` until all of ``data`` is written (a write may be partial)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _read_files(paths: list[str], max_total: int) -> list[bytes | None]:
    out: list[bytes | None] = []
    total = 0
    for path in paths:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            out.append(None)
            continue
        try:
            size = os.fstat(fd).st_size
            total += size
            # Checked before the read, so a stray large blob is never loaded.
            if total > max_total:
                raise BatchTooLarge(total)
            out.append(_read_exact(fd, size))
        finally:
            os.close(fd)
    return out


def _read_exact(fd: int, size: int) -> bytes:
    data = os.read(fd, size)
    if len(data) == size:
        return data
    # A read may return less than asked (rare for regular files); gather the rest.
    parts = [data]
    got = len(data)
    while got < size and (more := os.read(fd, size - got)):
        parts.append(more)
        got += len(more)
    return b"".join(parts)


@dataclass(frozen=True)
class S3Options:
    """How an S3 store reaches S3 (unset: the AWS defaults)."""

    endpoint_url: str | None = None
    region: str | None = None
    # Server-side encryption passes through, e.g. "aws:kms" or "AES256".
    sse: str | None = None
    sse_kms_key_id: str | None = None


@dataclass(frozen=True)
class S3Settings:
    bucket: str
    prefix: str
    endpoint_url: str | None = None
    region: str | None = None
    # Server-side encryption passes through, e.g. "aws:kms" or "AES256".
    sse: str | None = None
    sse_kms_key_id: str | None = None


class S3BlobStore:
    """An S3 bucket (AWS, MinIO, Ceph, ...) through aiobotocore."""

    def __init__(self, settings: S3Settings, client: Any, stack: AsyncExitStack, staging: Staging):
        self.settings = settings
        self.url = f"s3://{settings.bucket}/{settings.prefix}".rstrip("/")
        self.staging = staging
        self._client = client
        self._stack = stack

    @classmethod
    async def open(cls, settings: S3Settings, staging: Staging) -> S3BlobStore:
        from aiobotocore.session import get_session

        session = get_session()
        # S3's listing times parsed without dateutil: most of a sweep's CPU otherwise.
        parsers = session.get_component("response_parser_factory")
        parsers.set_parser_defaults(timestamp_parser=sweeping.parse_timestamp)
        stack = AsyncExitStack()
        client = await stack.enter_async_context(
            session.create_client("s3", endpoint_url=settings.endpoint_url, region_name=settings.region or "us-east-1")
        )
        return cls(settings, client, stack, staging)

    def _key(self, key: str) -> str:
        check_key(key)
        return f"{self.settings.prefix}/{key}" if self.settings.prefix else key

    def _sse(self) -> dict[str, str]:
        extra = {}
        if self.settings.sse:
            extra["ServerSideEncryption"] = self.settings.sse
        if self.settings.sse_kms_key_id:
            extra["SSEKMSKeyId"] = self.settings.sse_kms_key_id
        return extra

    async def exists(self, key: str) -> bool:
        try:
            await self._client.head_object(Bucket=self.settings.bucket, Key=self._key(key))
            return True
        except self._client.exceptions.ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise

    async def exists_many(self, keys: Sequence[str]) -> list[bool]:
        gate = asyncio.Semaphore(S3_BATCH_CONCURRENCY)

        async def head(key: str) -> bool:
            async with gate:
                return await self.exists(key)

        return list(await asyncio.gather(*(head(k) for k in keys)))

    async def put_file(self, key: str, path: Path) -> None:
        with open(path, "rb") as f:
            await self._client.put_object(Bucket=self.settings.bucket, Key=self._key(key), Body=f, **self._sse())

    async def put_bytes(self, key: str, data: bytes) -> None:
        await self._client.put_object(Bucket=self.settings.bucket, Key=self._key(key), Body=data, **self._sse())

    async def put_many(self, items: Sequence[tuple[str, bytes]]) -> list[bool]:
        # S3 has no batch PUT: the round of I/O is concurrent HEAD+PUTs.
        gate = asyncio.Semaphore(S3_BATCH_CONCURRENCY)

        async def put(key: str, data: bytes) -> bool:
            async with gate:
                if await self.exists(key):
                    return False
                await self.put_bytes(key, data)
                return True

        return list(await asyncio.gather(*(put(k, d) for k, d in items)))

    async def get_many(self, keys: Sequence[str], max_total: int) -> list[bytes | None]:
        gate = asyncio.Semaphore(S3_BATCH_CONCURRENCY)
        total = 0

        async def get(key: str) -> bytes | None:
            nonlocal total
            async with gate:
                try:
                    resp = await self._get(key)
                except NotFound:
                    return None
                async with resp["Body"] as body:
                    # Counted from the header before the body is read, so
                    # memory stays within max_total whatever the sizes.
                    total += int(resp["ContentLength"])
                    if total > max_total:
                        raise BatchTooLarge(total)
                    data: bytes = await body.read()
                    return data

        return list(await asyncio.gather(*(get(k) for k in keys)))

    async def put_staged(self, key: str, path: str) -> None:
        try:
            await self.put_file(key, Path(path))
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    def local_path(self, key: str) -> str | None:
        return None

    async def _get(self, key: str) -> Any:
        try:
            return await self._client.get_object(Bucket=self.settings.bucket, Key=self._key(key))
        except self._client.exceptions.NoSuchKey:
            raise NotFound(f"blob {key} not found") from None

    async def get_to_file(self, key: str, path: Path) -> None:
        resp = await self._get(key)
        async with resp["Body"] as body:
            with storage_errors(path), open(path, "wb") as f:
                while chunk := await body.read(CHUNK):
                    f.write(chunk)

    async def read(self, key: str) -> AsyncIterator[bytes]:
        resp = await self._get(key)
        async with resp["Body"] as body:
            while chunk := await body.read(READ_CHUNK):
                yield chunk

    async def delete(self, key: str) -> None:
        await self._client.delete_object(Bucket=self.settings.bucket, Key=self._key(key))

    async def refresh_many(self, keys: Sequence[str], older_than: float) -> list[bool]:
        gate = asyncio.Semaphore(S3_BATCH_CONCURRENCY)
        bucket, extra = self.settings.bucket, self._sse()

        async def refresh(key: str) -> bool:
            async with gate:
                return await sweeping.refresh_s3(self._client, bucket, self._key(key), older_than, extra)

        return list(await asyncio.gather(*(refresh(k) for k in keys)))

    def list_sorted(self, prefix: str) -> AsyncIterator[list[StoredObject]]:
        check_key(prefix.rstrip("/"))
        return sweeping.iter_s3(self._client, self.settings.bucket, self.settings.prefix, prefix)

    async def delete_many(self, keys: Sequence[str], cutoff: float, *, listed: float = 0.0) -> Deleted:
        for key in keys:
            check_key(key)
        return await sweeping.delete_s3(
            self._client, self.settings.bucket, self.settings.prefix, keys, cutoff, listed, S3_BATCH_CONCURRENCY
        )

    async def recover_sweep(self) -> int:
        return 0  # DeleteObjects leaves nothing half done

    async def aclose(self) -> None:
        await self._stack.aclose()


async def open_store(
    url: str,
    *,
    staging_dir: Path | None = None,
    staging_grace_s: float = DEFAULT_GRACE_S,
    s3: S3Options | None = None,
) -> BlobStore:
    """``file:///path`` or a plain path → local; ``s3://bucket/prefix`` → S3.

    A local store stages under its root; an S3 store in ``staging_dir``
    (``<data dir>/staging`` as the services wire it).
    """
    parts = urlsplit(url)
    if parts.scheme in ("", "file"):
        return LocalBlobStore(Path(parts.path if parts.scheme else url), staging_grace_s)
    if parts.scheme == "s3":
        if not parts.netloc:
            raise InvalidArgument(f"storage URL {url!r} has no bucket")
        o = s3 or S3Options()
        settings = S3Settings(parts.netloc, parts.path.strip("/"), o.endpoint_url, o.region, o.sse, o.sse_kms_key_id)
        if staging_dir is None:
            staging_dir = Path(tempfile.gettempdir()) / f"depot-staging-{os.getuid()}"
        return await S3BlobStore.open(settings, Staging(staging_dir, staging_grace_s))
    raise InvalidArgument(f"unsupported storage URL {url!r}: use file:// or s3://")
