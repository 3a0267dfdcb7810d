"""PostgreSQL faults under a real ``depot server``: crash, stop/start, freeze.

A ``depot server`` process runs on embedded defaults (its own durable
PostgreSQL, started by the server as ``depot server`` always does) while
``--writers`` grpc.aio clients commit small versions through the generated
stubs (PutManifest with the bytes inline, then CreateArtifactVersion), with
no retries, so every failure a client would see is recorded with its code.
Each writer owns one collection; a reader resolves ``latest`` meanwhile.
Underneath, PostgreSQL is

- ``crash``: stopped with ``pg_ctl stop -m immediate`` (a crash: no
  checkpoint, shared memory gone) and started again. Afterwards every
  acknowledged (collection, index, digest) must be in the database and each
  collection's indexes must be 0..n-1 (``lost`` must be 0).
- ``restart``: stopped with ``-m fast`` and started again. Every failure
  must be UNAVAILABLE, and commits must succeed again afterwards without
  restarting the server.
- ``freeze``: SIGSTOPped (postmaster and backends) for ``--freeze`` s, then
  SIGCONT. Every call must end within the documented bound
  (db.ACQUIRE_TIMEOUT_S + db.CLIENT_TIMEOUT_S) with UNAVAILABLE or
  DEADLINE_EXCEEDED, instead of hanging for the whole freeze.

    python bench/pg_faults.py --mode crash --runs 5 --writers 28

prints one JSON line per run, then a summary line.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

START_S = 60.0
ENTITY = "faults"
CALL_TIMEOUT_S = 60.0  # longer than any server-side bound: the server must answer first

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Call:
    kind: str  # "put_manifest" | "commit" | "resolve"
    start: float  # monotonic
    end: float
    code: str  # "OK" or the grpc status name


@dataclass
class Outcome:
    mode: str
    calls: list[Call] = field(default_factory=list)
    acked: list[tuple[str, int, str]] = field(default_factory=list)  # (collection, index, digest)
    fault_at: float = 0.0
    fault_end: float = 0.0
    lost: list[tuple[str, int, str]] = field(default_factory=list)
    gaps: list[str] = field(default_factory=list)
    error_details: list[str] = field(default_factory=list)

    def codes(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for c in self.calls:
            out[c.code] = out.get(c.code, 0) + 1
        return out

    def ok_after_fault(self) -> int:
        return sum(1 for c in self.calls if c.code == "OK" and c.kind == "commit" and c.start > self.fault_end)

    def summary(self) -> dict[str, object]:
        durations = sorted(c.end - c.start for c in self.calls if c.code != "OK")
        return {
            "mode": self.mode,
            "acked": len(self.acked),
            "lost": len(self.lost),
            "gaps": len(self.gaps),
            "codes": self.codes(),
            "ok_commits_after_fault": self.ok_after_fault(),
            "max_failed_call_s": round(durations[-1], 2) if durations else None,
            "max_call_s": round(max((c.end - c.start for c in self.calls), default=0.0), 2),
            "fault_s": round(self.fault_end - self.fault_at, 2),
            "first_errors": self.error_details[:3],
        }


class EmbeddedServer:
    """``depot server`` on its own data dir, embedded PostgreSQL and all."""

    def __init__(self, data_dir: Path):
        from depot.services.allinone.postgres import LocalPostgres

        self.data_dir = data_dir
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        # The cluster `depot server` starts for this data dir (same arguments:
        # durable), so the fault can be dealt to it and it can be started again.
        self.pg = LocalPostgres.for_data_dir(data_dir)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("DEPOT_")}
        self.env.update(DEPOT_DATA_DIR=str(data_dir), DEPOT_LISTEN=self.address, DEPOT_WORKERS="1")
        self.log = data_dir.parent / f"{data_dir.name}-server.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.key = ""

    def start(self) -> EmbeddedServer:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "depot.cli", "server"], env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + START_S
        while not ((self.data_dir / "server.json").exists() and _port_open(self.port)):
            if self.proc.poll() is not None:
                raise RuntimeError(f"depot server exited with {self.proc.returncode}; see {self.log}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"depot server did not start in {START_S} s; see {self.log}")
            time.sleep(0.05)
        self.key = (self.data_dir / "admin.key").read_text().strip()
        return self

    def postgres_pids(self) -> list[int]:
        """The postmaster and its children (backends, walwriter, ...)."""
        postmaster = int((self.pg.pgdata / "postmaster.pid").read_text().split()[0])
        pids = [postmaster]
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                # "pid (comm) state ppid ...": comm may hold spaces, so split after ')'.
                ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == postmaster:
                pids.append(int(stat.parent.name))
        return pids

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)
        # The server stops its cluster on a clean exit; make sure of it.
        if self.pg.running():
            self.pg.stop()

    def destroy(self) -> None:
        self.stop()
        self.pg.destroy()


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def _b64_xxh(data: bytes) -> str:
    import xxhash

    return base64.b64encode(xxhash.xxh3_128(data).digest()).decode()


async def _timed(out: Outcome, kind: str, call: Awaitable[T]) -> T:
    """Awaits one RPC, recording how long it took and how it ended."""
    import grpc

    t0 = time.monotonic()
    try:
        result = await call
    except grpc.aio.AioRpcError as e:
        code = e.code().name
        # NOT_FOUND for `latest` before the first commit is an answer, not a fault.
        out.calls.append(Call(kind, t0, time.monotonic(), "OK" if code == "NOT_FOUND" else code))
        if code != "NOT_FOUND" and len(out.error_details) < 20:
            out.error_details.append(f"{kind} {code}: {e.details()}")
        raise
    out.calls.append(Call(kind, t0, time.monotonic(), "OK"))
    return result


async def _writer(i: int, stubs: tuple, md: tuple, stop: list[float], out: Outcome) -> None:
    import grpc

    from depot.manifest.v1 import manifest_pb2 as mpb
    from depot.metadata.v1 import metadata_pb2 as pb

    meta, man = stubs
    n = 0
    while time.monotonic() < stop[0]:
        data = f"writer {i} version {n} {os.urandom(8).hex()}\n".encode()
        n += 1
        entry = mpb.ManifestEntry(
            path="f.txt", algorithm="xxh3_128", digest=_b64_xxh(data), size=len(data), content=data
        )
        try:
            ref = await _timed(
                out,
                "put_manifest",
                man.PutManifest(
                    mpb.PutManifestRequest(
                        header=mpb.ManifestHeader(entity=ENTITY, digest_algorithm="xxh3_128"), entries=[entry]
                    ),
                    metadata=md,
                    timeout=CALL_TIMEOUT_S,
                ),
            )
            version = await _timed(
                out,
                "commit",
                meta.CreateArtifactVersion(
                    pb.CreateArtifactVersionRequest(
                        parent=f"entities/{ENTITY}/projects/p",
                        artifact=f"c{i}",
                        type="dataset",
                        manifest=ref,
                        request_id=os.urandom(8).hex(),
                    ),
                    metadata=md,
                    timeout=CALL_TIMEOUT_S,
                ),
            )
        except grpc.aio.AioRpcError:
            await asyncio.sleep(0.05)
            continue
        out.acked.append((f"c{i}", version.index, version.digest))


async def _reader(stubs: tuple, md: tuple, stop: list[float], out: Outcome) -> None:
    import grpc

    from depot.metadata.v1 import metadata_pb2 as pb

    meta, _ = stubs
    while time.monotonic() < stop[0]:
        try:
            await _timed(
                out,
                "resolve",
                meta.GetArtifactVersion(
                    pb.GetArtifactVersionRequest(name=f"entities/{ENTITY}/projects/p/artifacts/c0/versions/latest"),
                    metadata=md,
                    timeout=CALL_TIMEOUT_S,
                ),
            )
        except grpc.aio.AioRpcError:
            pass
        await asyncio.sleep(0.02)


def _deal_fault(server: EmbeddedServer, mode: str, freeze_s: float) -> None:
    if mode == "crash":
        server.pg.stop("immediate")
        server.pg.start()
    elif mode == "restart":
        server.pg.stop("fast")
        time.sleep(1.0)  # down long enough for calls to find it gone, not just stopping
        server.pg.start()
    elif mode == "freeze":
        pids = server.postgres_pids()
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        try:
            time.sleep(freeze_s)
        finally:
            for pid in pids:
                os.kill(pid, signal.SIGCONT)
    else:
        raise ValueError(mode)


async def _drive(server: EmbeddedServer, out: Outcome, writers: int, before_s: float, after_s: float, freeze_s: float):
    import grpc

    from depot.manifest.v1 import manifest_pb2_grpc
    from depot.metadata.v1 import metadata_pb2_grpc

    md = (("authorization", f"Bearer {server.key}"),)
    async with grpc.aio.insecure_channel(server.address) as channel:
        stubs = (metadata_pb2_grpc.ArtifactServiceStub(channel), manifest_pb2_grpc.ManifestServiceStub(channel))
        # Far enough ahead for the fault and its recovery; moved once the fault is over.
        stop = [time.monotonic() + 3600.0]
        tasks = [asyncio.ensure_future(_writer(i, stubs, md, stop, out)) for i in range(writers)]
        tasks.append(asyncio.ensure_future(_reader(stubs, md, stop, out)))
        await asyncio.sleep(before_s)
        out.fault_at = time.monotonic()
        await asyncio.to_thread(_deal_fault, server, out.mode, freeze_s)
        out.fault_end = time.monotonic()
        stop[0] = time.monotonic() + after_s
        await asyncio.wait_for(asyncio.gather(*tasks), after_s + CALL_TIMEOUT_S + 10)


async def _verify(server: EmbeddedServer, out: Outcome) -> None:
    import asyncpg

    conn = await asyncpg.connect(server.pg.dsn("depot"))
    try:
        rows = await conn.fetch(
            "SELECT c.name, v.index, v.digest FROM versions v JOIN collections c ON c.id = v.collection_id"
            " JOIN projects p ON p.id = c.project_id JOIN entities e ON e.id = p.entity_id"
            " WHERE e.name = $1 AND v.state = 'committed'",
            ENTITY,
        )
    finally:
        await conn.close()
    stored = {(r["name"], r["index"]): r["digest"] for r in rows}
    out.lost = [a for a in out.acked if stored.get((a[0], a[1])) != a[2]]
    by_collection: dict[str, list[int]] = {}
    for name, index in stored:
        by_collection.setdefault(name, []).append(index)
    for name, indexes in sorted(by_collection.items()):
        if sorted(indexes) != list(range(len(indexes))):
            out.gaps.append(f"{name}: {sorted(set(range(max(indexes) + 1)) - set(indexes))[:5]} missing")


def create_entity(address: str, key: str, name: str) -> None:
    import grpc

    from depot.metadata.v1 import metadata_pb2 as pb
    from depot.metadata.v1 import metadata_pb2_grpc

    with grpc.insecure_channel(address) as ch:
        metadata_pb2_grpc.AccessServiceStub(ch).CreateEntity(
            pb.CreateEntityRequest(entity_id=name, entity=pb.Entity(kind="team")),
            metadata=(("authorization", f"Bearer {key}"),),
            timeout=30,
        )


def run_once(
    data_dir: Path, *, mode: str, writers: int = 28, before_s: float = 2.0, after_s: float = 2.0, freeze_s: float = 17.0
) -> Outcome:
    """One server, one fault under ``writers``; the caller owns ``data_dir``."""
    out = Outcome(mode)
    server = EmbeddedServer(data_dir)
    try:
        server.start()
        create_entity(server.address, server.key, ENTITY)
        asyncio.run(_drive(server, out, writers, before_s, after_s, freeze_s))
        asyncio.run(_verify(server, out))
    finally:
        server.destroy()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=["crash", "restart", "freeze"], default="crash")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--writers", type=int, default=28)
    ap.add_argument("--before", type=float, default=2.0, help="seconds of writes before the fault")
    ap.add_argument("--after", type=float, default=2.0, help="seconds of writes after it")
    ap.add_argument("--freeze", type=float, default=17.0, help="seconds PostgreSQL stays SIGSTOPped (freeze)")
    args = ap.parse_args()
    results = []
    for i in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="pg-faults-") as tmp:
            out = run_once(
                Path(tmp) / "data",
                mode=args.mode,
                writers=args.writers,
                before_s=args.before,
                after_s=args.after,
                freeze_s=args.freeze,
            )
        line = {"run": i, "writers": args.writers, **out.summary()}
        results.append(line)
        print(json.dumps(line), flush=True)
    print(
        json.dumps(
            {
                "mode": args.mode,
                "runs": args.runs,
                "acked_total": sum(r["acked"] for r in results),
                "lost_total": sum(r["lost"] for r in results),
                "gaps_total": sum(r["gaps"] for r in results),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
