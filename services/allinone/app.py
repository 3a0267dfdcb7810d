"""All three services in one process, for laptops and the quickstart.

Uses DEPOT_DATABASE_URL / DEPOT_STORAGE_URL when set, else an embedded
PostgreSQL and a blob directory under the data dir. On first start it
creates the superuser ``admin`` and writes its API key to
``<data dir>/admin.key`` (mode 0600, in a 0700 data dir).

One server per data dir: it holds an OS lock on ``<data dir>/server.lock``
for its whole life, so a second ``depot server`` on the same dir exits at
once naming the first one's pid and address (from ``server.json``) instead
of sharing, and later stopping, the first one's embedded PostgreSQL. The
kernel drops the lock when the process dies, however it dies.

With DEPOT_WORKERS=N it also starts N-1 worker processes that serve the
same services on the same port (SO_REUSEPORT: the kernel spreads incoming
connections over them), because one Python process runs its RPCs on one
core. The first process alone runs the embedded PostgreSQL, migrations
and the admin bootstrap; workers stop when it does. Every one of the N
processes also joins the reference fan-out (docs/fanout.md) on that
database, so a large reference is listed by all of them, not only by the
process its caller reached.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import fcntl
import json
import logging
import os
import secrets
import sys
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from depot.services.common import serving, tls
from depot.services.common.secret_files import DataDirError, private_dir, tighten_secret_file, write_secret_file
from depot.services.gc.server import Gc
from depot.services.manifest.fanout import open_fanout
from depot.services.manifest.operations import Operations
from depot.services.manifest.server import GATES as MANIFEST_GATES
from depot.services.manifest.server import add_manifest, sweep_staging
from depot.services.metadata import db
from depot.services.metadata.access import Access
from depot.services.metadata.server import Metadata

from .config import AllInOneConfig
from .postgres import LocalPostgres, NoPostgres

log = logging.getLogger(__name__)


@dataclass
class Running:
    address: str
    admin_key_file: Path
    server: grpc.aio.Server


LOCK_FILE = "server.lock"
SERVER_FILE = "server.json"
SECRET_FILE = "internal.secret"


class DataDirBusy(RuntimeError):
    """Another server holds the data dir's lock."""


def lock_data_dir(data_dir: Path) -> int:
    """Takes ``<data dir>/server.lock`` (an flock) and returns its fd: the
    lock lasts until that fd is closed or this process ends.

    The fd is close-on-exec, so PostgreSQL and the worker processes never
    hold it: a server that is gone never keeps its data dir locked.
    """
    lock_file = private_dir(data_dir) / LOCK_FILE
    try:
        fd = os.open(lock_file, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    except OSError as e:
        raise DataDirError(f"cannot open {lock_file}: {e.strerror or e}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 64, 0).decode(errors="replace").strip()
        os.close(fd)
        raise DataDirBusy(_busy_message(data_dir, holder)) from None
    except OSError as e:
        # ENOLCK (NFS without a lock manager), EACCES, ...: the lock that
        # keeps two servers apart cannot be had, so do not start without it.
        os.close(fd)
        raise DataDirError(f"cannot lock data dir {data_dir} ({LOCK_FILE}): {e.strerror or e}") from None
    except BaseException:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _busy_message(data_dir: Path, holder_pid: str) -> str:
    where = "still starting"
    try:
        info = json.loads((data_dir / SERVER_FILE).read_text())
        if str(info.get("pid")) == holder_pid:
            where = f"serving on {info['address']}"
    except (OSError, ValueError, KeyError, AttributeError):
        pass
    return (
        f"another depot server (pid {holder_pid or 'unknown'}, {where}) is using data dir {data_dir};"
        " stop it first or set DEPOT_DATA_DIR to another directory"
    )


def internal_secret(data_dir: Path) -> bytes:
    """The internal secret kept in ``<data dir>/internal.secret``, generated on
    first start (0600 from its first byte; a concurrent first start keeps
    the file that won)."""
    path = private_dir(data_dir) / SECRET_FILE
    if not path.exists():
        write_secret_file(path, secrets.token_hex(32), replace=False)
    tighten_secret_file(path)
    return path.read_text().strip().encode()


def connections_needed(config: AllInOneConfig) -> int:
    """The embedded PostgreSQL's max_connections: every process's pools at their
    largest, with room for admin sessions; never below PostgreSQL's usual 300.

    A fixed 300 ran out at about ten processes (DEPOT_WORKERS allows 64).
    """
    per_process = db.POOL_MAX_SIZE + (config.fanout.pool_size if config.workers > 1 else 0)
    return max(300, config.workers * per_process + 20)


async def start(config: AllInOneConfig, stack: AsyncExitStack) -> Running:
    """Starts everything; ``stack`` stops it all again in reverse order.

    Raises DataDirBusy when another server runs on ``config.data_dir``, and
    DataDirError when it cannot be used or locked.
    """
    stack.callback(os.close, lock_data_dir(config.data_dir))
    secret = config.internal_secret or internal_secret(config.data_dir)
    dsn = config.database_url
    if dsn is None:
        pg = LocalPostgres.for_data_dir(config.data_dir, max_connections=connections_needed(config))
        await asyncio.to_thread(pg.start)
        stack.callback(pg.stop)
        dsn = await pg.create_database("depot")
    applied = await db.migrate(dsn)
    if applied:
        log.info("applied migrations: %s", ", ".join(applied))
    pool = await db.create_pool(dsn)
    stack.push_async_callback(pool.close)

    key_file = config.data_dir / "admin.key"
    key = await Access(db.Database(pool)).bootstrap_admin()
    if key is not None:
        write_secret_file(key_file, f"{key}\n")
    elif key_file.exists():
        tighten_secret_file(key_file)

    server, address = await _serve_services(config, secret, pool, dsn, stack)
    if config.workers > 1:
        host, port = config.server.listen.rsplit(":", 1)[0], address.rsplit(":", 1)[1]
        server_config = dataclasses.replace(config.server, listen=f"{host}:{port}")
        worker_config = dataclasses.replace(config, server=server_config, database_url=dsn)
        await _start_workers(worker_config, secret, config.workers - 1, stack)
    # Written whole (write then rename) so a reader (a second server naming
    # this one, the quickstart waiting for it) never sees half of it.
    server_file = config.data_dir / SERVER_FILE
    write_secret_file(
        server_file, json.dumps({"address": address, "pid": os.getpid(), "admin_key_file": str(key_file)})
    )
    stack.callback(server_file.unlink, missing_ok=True)
    return Running(address, key_file, server)


async def _serve_services(
    config: AllInOneConfig, secret: bytes, pool: Any, dsn: str, stack: AsyncExitStack, *, joining: bool = False
) -> tuple[grpc.aio.Server, str]:
    """Opens the blob store and serves the three services on ``config.server.listen``
    (``joining``: a worker, on the port its first process already serves;
    ``dsn``: the database ``pool`` is on, where the processes share listings)."""
    listen, server_tls, manifest = config.server.listen, config.server.tls, config.manifest
    store = await manifest.open_store()
    stack.push_async_callback(store.aclose)
    # What a crash left staged is swept before serving, then periodically.
    stack.callback((await sweep_staging(store)).cancel)

    # One grace period: the collector's and the metadata service's (DEPOT_GRACE_PERIOD_S).
    metadata, gc = Metadata(pool, secret, grace=config.gc.grace), Gc(pool, config.gc, store)
    gates = {**metadata.callers(), **MANIFEST_GATES, **gc.callers()}
    server = serving.new_server(gates, reuse_port=config.workers > 1)
    if config.workers > 1 and not joining:
        # SO_REUSEPORT would also let this server share a port another one
        # (another data dir) already serves, and split clients between them.
        serving.check_port_free(listen)
    port = serving.bind(server, listen, server_tls)
    host = listen.rsplit(":", 1)[0]
    address = f"{'127.0.0.1' if host in ('0.0.0.0', '[::]', '') else host}:{port}"
    # The manifest service checks access by calling metadata, here in-process
    # but still through the port, so over TLS when the port serves TLS.
    channel = tls.internal_channel(address, manifest.client_tls, server_tls, to_self=True)
    stack.push_async_callback(channel.close)
    references = manifest.reference_policy()
    if config.workers > 1:
        # Several processes on one database: each claims key ranges of the
        # others' large listings. Closed after the server stops and after
        # the listings (the stack unwinds in reverse: operations.close,
        # registered below, runs first), so a cancelled listing still has
        # the pool to drop its job with. One process lists in-process:
        # fanning out to itself would only add the job's round trips and a
        # copy of every segment.
        fanout, references = await open_fanout(dsn, store, references, config.fanout)
        stack.push_async_callback(fanout.close)
    operations = Operations(manifest.operation_settings())
    stack.push_async_callback(operations.close)
    names = [
        *metadata.add_to(server),
        add_manifest(
            server,
            store,
            channel,
            secret,
            references,
            idle_timeout_s=manifest.upload_idle_timeout_s,
            operations=operations,
            gc_grace_s=manifest.gc_grace_s,
        ),
        gc.add_to(server),
    ]
    # Workers share the first process's health port along with its database.
    health_listen = None if joining else config.server.health_listen
    health_server = await serving.start(server, names, health_listen=health_listen)
    stack.push_async_callback(serving.stop, server, health_server, 5)
    metadata.start()
    stack.push_async_callback(metadata.aclose)
    if not joining:
        # The first process runs the schedule; a worker answers RunNow only
        # (the collector lock would keep theirs idle anyway).
        stack.push_async_callback(_cancelled, gc.start_schedule())
    if server_tls is not None:
        await _check_internal_channel(channel, address)
    return server, address


async def _cancelled(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


INTERNAL_CHECK_S = 10.0


async def _check_internal_channel(channel: grpc.aio.Channel, address: str) -> None:
    """Fails the start, not every later upload, when the service cannot
    verify its own certificate."""
    try:
        await asyncio.wait_for(channel.channel_ready(), INTERNAL_CHECK_S)
    except TimeoutError:
        raise RuntimeError(
            f"the manifest service cannot reach metadata over TLS at {address}: set DEPOT_TLS_CA to the CA "
            "that issued DEPOT_TLS_CERT, and DEPOT_TLS_SERVER_NAME if the certificate does not name "
            f"{address.rsplit(':', 1)[0]}"
        ) from None


async def _start_workers(config: AllInOneConfig, secret: bytes, count: int, stack: AsyncExitStack) -> None:
    """Starts ``count`` worker processes and waits until each one serves.

    Settings go in the environment; the internal secret goes through the
    worker's stdin instead, so it never shows in /proc/<pid>/environ.
    """
    env = {**os.environ, **config.to_env()}
    env.pop("DEPOT_INTERNAL_SECRET", None)
    procs = []
    for _ in range(count):
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "depot.services.allinone",
            WORKER_FLAG,
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        procs.append(proc)
        stack.push_async_callback(_stop_worker, proc)
        assert proc.stdin is not None
        proc.stdin.write(base64.b64encode(secret) + b"\n")
        await proc.stdin.drain()
        proc.stdin.close()
    for proc in procs:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), WORKER_START_S)
        if line.strip() != READY:
            await _stop_worker(proc)
            raise RuntimeError(f"a worker process failed to start (exit code {proc.returncode}); see its log above")


async def _stop_worker(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()


WORKER_FLAG = "--worker"
WORKER_START_S = 60.0
READY = b"depot-worker-ready"


async def serve_worker(config: AllInOneConfig) -> None:
    """A worker: the services on the first process's port and database, until
    SIGTERM or until that process is gone."""
    parent = os.getppid()
    secret = base64.b64decode(sys.stdin.buffer.readline())
    async with AsyncExitStack() as stack:
        assert config.database_url is not None, "workers get the database URL from the first process"
        pool = await db.create_pool(config.database_url)
        stack.push_async_callback(pool.close)
        await _serve_services(config, secret, pool, config.database_url, stack, joining=True)
        sys.stdout.buffer.write(READY + b"\n")
        sys.stdout.flush()
        # Nobody reads the pipe after this line: anything printed later (a
        # console span exporter, say) goes to stderr instead of filling it.
        os.dup2(2, 1)
        stop = asyncio.ensure_future(serving.wait_for_signal())
        while not stop.done() and os.getppid() == parent:
            await asyncio.wait([stop], timeout=1.0)
        stop.cancel()


async def serve(config: AllInOneConfig) -> None:
    """Serves until SIGTERM/SIGINT; exits with one line when the data dir is taken (1) or
    the install has no PostgreSQL to embed (2: a missing part, as a missing extra is)."""
    async with AsyncExitStack() as stack:
        try:
            running = await start(config, stack)
        except (DataDirBusy, DataDirError) as e:
            print(f"depot: error: {e}", file=sys.stderr, flush=True)
            raise SystemExit(1) from None
        except NoPostgres as e:
            print(f"depot: error: {e}", file=sys.stderr, flush=True)
            raise SystemExit(2) from None
        scheme = "grpcs://" if config.server.tls is not None else ""
        print(f"depot: serving on {scheme}{running.address} (metadata, manifest, gc)", flush=True)
        print(f"depot: admin API key in {running.admin_key_file}", flush=True)
        await serving.wait_for_signal()
        print("depot: stopping", flush=True)


__all__ = [
    "start",
    "serve",
    "serve_worker",
    "internal_secret",
    "lock_data_dir",
    "DataDirBusy",
    "Running",
    "WORKER_FLAG",
]
