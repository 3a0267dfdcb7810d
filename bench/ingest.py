"""Benchmark: bulk reference ingestion against the services as separate processes.

For each manifest replica count in ``--replicas`` (default ``1,2``), in one
invocation:

1. a fresh database (on ``--database-url``, else an embedded PostgreSQL under
   the work dir), migrated; an admin key;
2. the services, each its own process: metadata, ``R`` manifest replicas
   (all with ``DEPOT_DATABASE_URL``: a large reference fans out across them,
   docs/fanout.md) and gc; the S3 simulator (bench/s3sim.py) in its own
   process, bucket ``ing`` holding ``--objects-per-ref`` keys;
3. ``--clients`` concurrent SDK clients (threads spread over ``--procs``
   client processes; client process k talks to manifest replica k mod R;
   client i logs into team ``i mod --teams``: a replica runs at most 8
   listings of one entity at once and refuses more, RESOURCE_EXHAUSTED),
   each logging, until ``--duration`` is up, in turn: a *reference artifact*
   (``add_reference("s3://ing/dataset/")`` + one small file of its own, so
   every log is a new version) and a *small file artifact* (three small
   files), each ``log_artifact().wait()``;
4. the consistency check: every acknowledged version exists, resolves
   (``Api.artifact(name:vN)``) with the digest the client was given, a
   sample of reference versions lists exactly ``--objects-per-ref`` + 1
   entries, every artifact holds exactly the versions acknowledged (no
   duplicate, none lost), and no version is left pending.

One JSON line per replica count::

    {"bench": "ingest", "clients": 64, "manifest_replicas": 2, "artifacts": ...,
     "objects_per_s": ..., "p50_ms": ..., "p99_ms": ..., "errors": 0, "error_kinds": {},
     "consistency": {...}}

``error_kinds`` counts each distinct error with the SDK frame it came from;
``--keep-logs DIR`` keeps the services' logs (the work dir goes at the end).

``objects_per_s`` counts referenced objects ingested (acknowledged reference
versions × objects per reference) per second of ``window_s`` (first log
started to last one acknowledged; client start-up excluded); ``p50_ms``/``p99_ms``
are over every ``log_artifact().wait()`` (both kinds; ``ref_p99_ms`` for the
reference ones alone).

``--big-objects N`` (e.g. 1000000) adds, for each replica count, one more
line: the wall time of a single reference of N keys (bucket ``big``) logged
through the SDK, fanned out across the replicas::

    python bench/ingest.py --clients 64 --duration 60 --replicas 1,2
    python bench/ingest.py --clients 8 --duration 0 --replicas 1,2 --big-objects 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
Row = dict[str, Any]
ROOT = "dataset"  # the simulator's nested layout
CREDS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}


def _progress(msg: str) -> None:
    print(f"[ingest] {msg}", file=sys.stderr, flush=True)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_healthy(port: int, proc: subprocess.Popen[bytes], deadline: float) -> None:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"service on port {port} exited with {proc.returncode}")
            try:
                if stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status == 1:
                    return
            except grpc.RpcError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"service on port {port} did not become healthy")
            time.sleep(0.2)


def _origin(e: BaseException) -> str:
    """Where an error came from: the innermost SDK frame of its traceback (which call failed)."""
    import traceback

    frames = [f for f in traceback.extract_tb(e.__traceback__) if "/depot/" in f.filename]
    return f"{Path(frames[-1].filename).name}:{frames[-1].lineno} {frames[-1].name}" if frames else "?"


# -- the clients ---------------------------------------------------------------------------------


def _child(a: argparse.Namespace) -> None:
    """One client process: ``--threads`` clients until the deadline; one JSON line of results."""
    import depot

    key = Path(a.key_file).read_text().strip()
    deadline = time.monotonic() + a.duration
    acks: list[Row] = []
    errors: list[str] = []
    started: list[float] = []
    lock = threading.Lock()

    def client(c: int) -> None:
        seq = 0
        team = f"team-{(a.client_offset + c) % a.teams}"
        run = depot.init(team, project="ingest", job_type="ingest", address=a.address, api_key=key)
        try:
            while time.monotonic() < deadline:
                for kind in ("ref", "files"):
                    name = f"{kind}-{a.proc_index}-{c}"
                    art = depot.Artifact(name, type="dataset")
                    with art.new_file("meta.json") as f:
                        f.write(json.dumps({"client": c, "seq": seq, "nonce": uuid.uuid4().hex}))
                    if kind == "ref":
                        art.add_reference(f"s3://ing/{ROOT}/")
                    else:
                        for i in range(2):
                            with art.new_file(f"part-{i}.txt") as f:
                                f.write(f"{c}:{seq}:{i}:{random.random()}")
                    t0 = time.perf_counter()
                    started.append(time.time())
                    try:
                        run.log_artifact(art).wait()
                    except Exception as e:  # every failure is counted, the client goes on
                        with lock:
                            errors.append(f"{kind}: {type(e).__name__}: {e} ({_origin(e)})"[:300])
                        continue
                    ms = (time.perf_counter() - t0) * 1000
                    with lock:
                        acks.append(
                            {
                                "kind": kind,
                                "name": name,
                                "path": art.qualified_name,
                                "digest": art.digest,
                                "ms": ms,
                                "end": time.time(),
                            }
                        )
                    seq += 1
        finally:
            run.finish()

    threads = [threading.Thread(target=client, args=(c,)) for c in range(a.threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps({"acks": acks, "errors": errors, "start": min(started, default=time.time())}), flush=True)


def _child_big(a: argparse.Namespace) -> None:
    import depot

    key = Path(a.key_file).read_text().strip()
    run = depot.init("team-0", project="ingest", job_type="big", address=a.address, api_key=key)
    art = depot.Artifact(f"big-{uuid.uuid4().hex[:8]}", type="dataset")
    art.add_reference(f"s3://big/{ROOT}/")
    t0 = time.perf_counter()
    try:
        run.log_artifact(art).wait()
    finally:
        run.finish()
    print(json.dumps({"wall_s": round(time.perf_counter() - t0, 3), "digest": art.digest}), flush=True)


# -- the services --------------------------------------------------------------------------------


class Services:
    """metadata, R manifest replicas and gc as processes, on one fresh database."""

    def __init__(self, work: Path, database_url: str, endpoint: str, replicas: int) -> None:
        self.work = work
        work.mkdir(parents=True, exist_ok=True)
        self.procs: list[subprocess.Popen[bytes]] = []
        self.ports = {"metadata": _free_port(), "gc": _free_port()}
        self.ports.update({f"manifest-{i}": _free_port() for i in range(replicas)})
        env = {k: v for k, v in os.environ.items() if not k.startswith("DEPOT_")}
        env.update(
            CREDS,
            DEPOT_DATABASE_URL=database_url,
            DEPOT_STORAGE_URL=(work / "blobs").as_uri(),
            DEPOT_INTERNAL_SECRET=uuid.uuid4().hex,
            DEPOT_METADATA_ADDRESS=f"127.0.0.1:{self.ports['metadata']}",
            DEPOT_DATA_DIR=str(work / "data"),
            DEPOT_REFERENCE_BUCKETS="ing,big",
            DEPOT_REFERENCE_S3_ENDPOINT_URL=endpoint,
        )
        self.env = env
        run = [sys.executable, "-m"]
        subprocess.run([*run, "depot.services.metadata", "migrate"], env=env, check=True, capture_output=True)
        key = subprocess.run(
            [*run, "depot.services.metadata", "bootstrap-admin"], env=env, check=True, capture_output=True, text=True
        ).stdout.strip()
        self.key_file = work / "admin.key"
        self.key_file.write_text(key)
        self.key_file.chmod(0o600)
        for name, port in self.ports.items():
            with open(work / f"{name}.log", "wb") as log:  # the process keeps its own descriptor
                self.procs.append(
                    subprocess.Popen(
                        [*run, f"depot.services.{name.split('-')[0]}", "serve"],
                        env={**env, "DEPOT_LISTEN": f"127.0.0.1:{port}"},
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
        deadline = time.monotonic() + 120
        for port, proc in zip(self.ports.values(), self.procs):
            _wait_healthy(port, proc, deadline)
        self.address = f"127.0.0.1:{self.ports['metadata']}"
        self.admin_key = key
        self.manifests = [f"127.0.0.1:{self.ports[f'manifest-{i}']}" for i in range(replicas)]

    def client_env(self, k: int) -> dict[str, str]:
        env = {k_: v for k_, v in os.environ.items() if not k_.startswith("DEPOT_")}
        env.update(
            DEPOT_MANIFEST_ADDRESS=self.manifests[k % len(self.manifests)], DEPOT_CACHE_DIR=str(self.work / "cache")
        )
        return env

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()


def _create_team(address: str, admin_key: str, name: str) -> None:
    import grpc

    from depot.metadata.v1 import metadata_pb2 as pb
    from depot.metadata.v1 import metadata_pb2_grpc

    with grpc.insecure_channel(address) as ch:
        metadata_pb2_grpc.AccessServiceStub(ch).CreateEntity(
            pb.CreateEntityRequest(entity_id=name, entity=pb.Entity(kind="team")),
            metadata=(("authorization", f"Bearer {admin_key}"),),
        )


def _start_sim(a: argparse.Namespace) -> tuple[subprocess.Popen[str], str]:
    cmd = [sys.executable, str(HERE / "s3sim.py"), "--objects", "1", "--layout", "nested", "--port", "0"]
    cmd += ["--latency-ms", str(a.latency_ms), "--bucket", f"ing={a.objects_per_ref}"]
    if a.big_objects:
        cmd += ["--bucket", f"big={a.big_objects}"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None
    endpoint = p.stdout.readline().strip()
    if not endpoint.startswith("http"):
        p.kill()
        raise RuntimeError("simulator did not start")
    return p, endpoint


def _new_database(admin_url: str) -> str:
    import asyncpg

    name = f"depot_ingest_{os.getpid()}_{uuid.uuid4().hex[:8]}"

    async def create() -> None:
        conn = await asyncpg.connect(admin_url)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(create())
    from urllib.parse import urlsplit, urlunsplit

    return urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))


# -- the check -----------------------------------------------------------------------------------


def _check(services: Services, acks: list[Row], objects_per_ref: int, sample: int) -> Row:
    """Every acknowledged version exists and resolves with its digest; nothing more or pending."""
    import asyncpg

    import depot

    key = services.key_file.read_text().strip()
    os.environ["DEPOT_MANIFEST_ADDRESS"] = services.manifests[0]  # entries are read from a manifest replica
    api = depot.Api(services.address, key)
    problems: list[str] = []
    by_name: dict[str, set[str]] = {}
    for ack in acks:
        versions = by_name.setdefault(ack["name"], set())
        if ack["path"] in versions:
            problems.append(f"{ack['path']} acknowledged twice")
        versions.add(ack["path"])
        try:
            art = api.artifact(ack["path"])
        except Exception as e:
            problems.append(f"{ack['path']}: {type(e).__name__}")
            continue
        if art.digest != ack["digest"]:
            problems.append(f"{ack['path']}: digest {art.digest} != acknowledged {ack['digest']}")
    refs = [a for a in acks if a["kind"] == "ref"]
    for ack in random.Random(0).sample(refs, min(sample, len(refs))):
        n = sum(1 for _ in api.artifact(ack["path"]).files())
        if n != objects_per_ref + 1:
            problems.append(f"{ack['path']}: {n} entries, not {objects_per_ref + 1}")

    async def counts() -> tuple[dict[str, int], int]:
        conn = await asyncpg.connect(services.env["DEPOT_DATABASE_URL"])
        try:
            rows = await conn.fetch(
                "SELECT c.name, count(*) AS n FROM versions v JOIN collections c ON c.id = v.collection_id "
                "WHERE v.state = 'committed' GROUP BY c.name"
            )
            pending = await conn.fetchval("SELECT count(*) FROM versions WHERE state = 'pending'")
            return {r["name"]: int(r["n"]) for r in rows}, int(pending)
        finally:
            await conn.close()

    stored, pending = asyncio.run(counts())
    for name, versions in by_name.items():
        if stored.get(name, 0) != len(versions):
            problems.append(f"{name}: {stored.get(name, 0)} committed versions, {len(versions)} acknowledged")
    if pending:
        problems.append(f"{pending} versions left pending")
    return {"ok": not problems, "checked": len(acks), "pending": pending, "problems": problems[:20]}


# -- one run -------------------------------------------------------------------------------------


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, int(q * len(values)))], 1)


def _run(a: argparse.Namespace, replicas: int, database_admin: str, endpoint: str, work: Path) -> list[Row]:
    rows: list[Row] = []
    services = Services(work, _new_database(database_admin), endpoint, replicas)
    try:
        for t in range(a.teams):
            _create_team(services.address, services.admin_key, f"team-{t}")
        if a.duration > 0:
            _progress(f"{replicas} replica(s): {a.clients} clients for {a.duration} s")
            per = [a.clients // a.procs + (1 if k < a.clients % a.procs else 0) for k in range(a.procs)]
            children = []
            t0 = time.perf_counter()
            for k, threads in enumerate(t for t in per if t):
                cmd = [sys.executable, __file__, "--child", "clients", "--threads", str(threads)]
                cmd += ["--proc-index", str(k), "--duration", str(a.duration), "--address", services.address]
                cmd += ["--key-file", str(services.key_file), "--teams", str(a.teams)]
                cmd += ["--client-offset", str(sum(per[:k]))]
                children.append(subprocess.Popen(cmd, env=services.client_env(k), stdout=subprocess.PIPE, text=True))
            acks: list[Row] = []
            errors: list[str] = []
            starts: list[float] = []
            for p in children:
                out, _ = p.communicate(timeout=a.duration + 600)
                lines = out.strip().splitlines()
                if p.returncode != 0 or not lines:
                    errors.append(f"client process exited with {p.returncode}")
                    continue
                got = json.loads(lines[-1])
                acks += got["acks"]
                errors += got["errors"]
                starts.append(got["start"])
            wall = time.perf_counter() - t0
            # From the first log started to the last one acknowledged (client start-up excluded).
            window = max((x["end"] for x in acks), default=0.0) - min(starts, default=0.0)
            ms = [x["ms"] for x in acks]
            ref_ms = [x["ms"] for x in acks if x["kind"] == "ref"]
            n_refs = len(ref_ms)
            _progress(f"consistency check of {len(acks)} versions")
            row: Row = {
                "bench": "ingest",
                "clients": a.clients,
                "manifest_replicas": replicas,
                "duration_s": a.duration,
                "wall_s": round(wall, 1),
                "artifacts": len(acks),
                "reference_artifacts": n_refs,
                "objects_per_ref": a.objects_per_ref,
                "window_s": round(window, 1),
                "objects_per_s": round(n_refs * a.objects_per_ref / window, 1) if window > 0 else None,
                "p50_ms": _percentile(ms, 0.5),
                "p99_ms": _percentile(ms, 0.99),
                "ref_p99_ms": _percentile(ref_ms, 0.99),
                "mean_ms": round(statistics.fmean(ms), 1) if ms else None,
                "errors": len(errors),
                # Distinct errors, most frequent first, with how often each happened.
                "error_kinds": dict(collections.Counter(errors).most_common(8)),
                "consistency": _check(services, acks, a.objects_per_ref, a.sample),
            }
            print(json.dumps(row), flush=True)
            rows.append(row)
        if a.big_objects:
            _progress(f"{replicas} replica(s): one reference of {a.big_objects} objects")
            cmd = [sys.executable, __file__, "--child", "big", "--address", services.address]
            cmd += ["--key-file", str(services.key_file)]
            out = subprocess.run(cmd, env=services.client_env(0), stdout=subprocess.PIPE, text=True, timeout=3600)
            lines = out.stdout.strip().splitlines()
            big: Row = {"bench": "ingest-big", "objects": a.big_objects, "manifest_replicas": replicas}
            big.update(json.loads(lines[-1]) if out.returncode == 0 and lines else {"error": out.returncode})
            print(json.dumps(big), flush=True)
            rows.append(big)
    finally:
        services.stop()
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--procs", type=int, default=4, help="client processes the clients are spread over")
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of logging (0: only --big-objects)")
    ap.add_argument("--replicas", default="1,2", help="manifest replica counts to run, in order")
    ap.add_argument(
        "--teams",
        type=int,
        default=8,
        help="teams the clients log into, round-robin (a manifest replica runs at most 8 listings per entity)",
    )
    ap.add_argument("--objects-per-ref", type=int, default=10_000)
    ap.add_argument("--big-objects", type=int, default=0)
    ap.add_argument("--latency-ms", type=float, default=0.0, help="the simulator's per-request latency")
    ap.add_argument("--sample", type=int, default=10, help="reference versions whose entries are counted")
    ap.add_argument("--database-url", help="an admin DSN; default: an embedded PostgreSQL under the work dir")
    ap.add_argument("--work", help="work dir (default: a temp dir, removed)")
    ap.add_argument("--keep-logs", metavar="DIR", help="copy the services' logs here before the work dir goes")
    # Internal: a client process.
    ap.add_argument("--child", choices=["clients", "big"], help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--proc-index", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--client-offset", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--address", help=argparse.SUPPRESS)
    ap.add_argument("--key-file", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child == "clients":
        _child(a)
        return
    if a.child == "big":
        _child_big(a)
        return
    with tempfile.TemporaryDirectory(prefix="depot-ingest-", dir=a.work) as tmp:
        work = Path(tmp)
        local = None
        admin = a.database_url
        if not admin:
            from depot.services.allinone.postgres import LocalPostgres

            local = LocalPostgres.for_data_dir(work / "pg", durable=False).start()
            admin = local.dsn("postgres")
        sim, endpoint = _start_sim(a)
        try:
            for r in (int(x) for x in a.replicas.split(",")):
                _run(a, r, admin, endpoint, work / f"replicas-{r}")
        finally:
            sim.terminate()
            sim.wait(30)
            if local is not None:
                local.destroy()
            if a.keep_logs:
                for log in work.glob("replicas-*/*.log"):
                    dest = Path(a.keep_logs) / log.parent.name
                    dest.mkdir(parents=True, exist_ok=True)
                    shutil.copy(log, dest / log.name)


if __name__ == "__main__":
    main()
