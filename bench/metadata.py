"""Metadata service benchmark: commits of small versions, and alias resolution.

    python bench/metadata.py [--seconds 10] [--repeat 3] [--workers 1,2] [--ops commit_baseline,commit,resolve]

Starts its own all-in-one server (embedded PostgreSQL, local blobs, 2
server processes by default: one Python process serves RPCs on one core) in
a subprocess on a temporary data dir, then drives it from client processes
with grpc.aio clients, and prints one JSON line per run, then the medians:

    {"op": ..., "clients": N, "ops_per_s": ..., "p50_ms": ..., "p99_ms": ...}

- ``commit_10_files``: one version of 10 small files (nine shared by every
  version, one unique) end to end through gRPC, as the SDK logs small files:
  PutManifest with the files' bytes inline, then CreateArtifactVersion
  committing it with an alias. Clients write to 8 collections.
- ``commit_10_files_5calls`` (the baseline, same run): the same versions in
  the five calls the SDK made before: pending version, FindMissingBlobs,
  UploadBlob of the new file, CreateManifest, CommitArtifactVersion.
- ``resolve_alias``: GetArtifactVersion of ``.../versions/prod``.

Latencies are per operation (a commit is all of its calls). Clients run in
a closed loop (each sends again the moment it is answered), so p99 includes
queueing at the server; ``*_paced`` lines spread the clients' requests over
a stated total rate instead (open loop), which shows latency under a load.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import functools
import json
import multiprocessing as mp
import os
import statistics
import tempfile
import time
from pathlib import Path

from _harness import start_allinone

COLLECTIONS = 8


def _b64_xxh(data: bytes) -> str:
    import xxhash

    return base64.b64encode(xxhash.xxh3_128(data).digest()).decode()


def _version_files(cid: int, n: int) -> dict[str, bytes]:
    """Ten small files: nine every version shares, one new."""
    shared = {f"f{i}.txt": f"shared file {i}\n".encode() * 10 for i in range(9)}
    return shared | {"unique.txt": f"client {cid} version {n} {os.getpid()}\n".encode()}


async def _commit_client(stubs: tuple, md: tuple, cid: int, deadline: float, lat: list[float]) -> None:
    """As the SDK logs small files: PutManifest with their bytes, then one
    CreateArtifactVersion that commits."""
    from depot.manifest.v1 import manifest_pb2 as mpb
    from depot.metadata.v1 import metadata_pb2 as pb

    meta, man = stubs
    n = 0
    while time.monotonic() < deadline:
        t0 = time.perf_counter()
        files = _version_files(cid, n)
        entries = [
            mpb.ManifestEntry(path=p, algorithm="xxh3_128", digest=_b64_xxh(d), size=len(d), content=d)
            for p, d in sorted(files.items())
        ]
        ref = await man.PutManifest(
            mpb.PutManifestRequest(
                header=mpb.ManifestHeader(entity="bench", digest_algorithm="xxh3_128"), entries=entries
            ),
            metadata=md,
        )
        await meta.CreateArtifactVersion(
            pb.CreateArtifactVersionRequest(
                parent="entities/bench/projects/p",
                artifact=f"c{(cid + n) % COLLECTIONS}",
                type="dataset",
                manifest=ref,
                aliases=["prod"],
                request_id=os.urandom(8).hex(),
            ),
            metadata=md,
        )
        lat.append(time.perf_counter() - t0)
        n += 1


async def _commit_client_5calls(stubs: tuple, md: tuple, cid: int, deadline: float, lat: list[float]) -> None:
    """The baseline: the same versions the way the SDK logged them before
    (and any client still may): a pending version, FindMissingBlobs, an
    UploadBlob per new file, CreateManifest (stream), CommitArtifactVersion."""
    from depot.manifest.v1 import manifest_pb2 as mpb
    from depot.metadata.v1 import metadata_pb2 as pb

    meta, man = stubs
    n = 0
    while time.monotonic() < deadline:
        t0 = time.perf_counter()
        files = _version_files(cid, n)
        pending = await meta.CreateArtifactVersion(
            pb.CreateArtifactVersionRequest(
                parent="entities/bench/projects/p",
                artifact=f"c{(cid + n) % COLLECTIONS}",
                type="dataset",
                request_id=os.urandom(8).hex(),
            ),
            metadata=md,
        )
        digests = {p: _b64_xxh(d) for p, d in files.items()}
        missing = await man.FindMissingBlobs(
            mpb.FindMissingBlobsRequest(
                entity="bench", blobs=[mpb.BlobDigest(algorithm="xxh3_128", digest=d) for d in digests.values()]
            ),
            metadata=md,
        )
        want = {b.digest for b in missing.missing}
        for p, d in files.items():
            if digests[p] in want:
                header = mpb.UploadBlobHeader(
                    entity="bench", digest=mpb.BlobDigest(algorithm="xxh3_128", digest=digests[p]), size=len(d)
                )
                await man.UploadBlob(
                    iter([mpb.UploadBlobRequest(header=header), mpb.UploadBlobRequest(chunk=d)]), metadata=md
                )
                want.discard(digests[p])
        entries = [
            mpb.ManifestEntry(path=p, algorithm="xxh3_128", digest=digests[p], size=len(files[p]))
            for p in sorted(files)
        ]
        header = mpb.ManifestHeader(entity="bench", digest_algorithm="xxh3_128")
        ref = await man.CreateManifest(
            iter(
                [
                    mpb.CreateManifestRequest(header=header),
                    mpb.CreateManifestRequest(batch=mpb.EntryBatch(entries=entries)),
                ]
            ),
            metadata=md,
        )
        await meta.CommitArtifactVersion(
            pb.CommitArtifactVersionRequest(
                uid=pending.uid,
                manifest=ref,
                aliases=["prod"],
                request_id=os.urandom(8).hex(),
            ),
            metadata=md,
        )
        lat.append(time.perf_counter() - t0)
        n += 1


async def _resolve_client(
    stubs: tuple, md: tuple, cid: int, deadline: float, lat: list[float], interval: float = 0.0
) -> None:
    """Closed loop when ``interval`` is 0; else one request every ``interval`` s (open loop)."""
    import random

    from depot.metadata.v1 import metadata_pb2 as pb

    meta, _ = stubs
    req = pb.GetArtifactVersionRequest(name=f"entities/bench/projects/p/artifacts/c{cid % COLLECTIONS}/versions/prod")
    next_at = time.monotonic() + random.random() * interval  # spread the clients' phases
    while time.monotonic() < deadline:
        if interval:
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            next_at += interval
        t0 = time.perf_counter()
        await meta.GetArtifactVersion(req, metadata=md)
        lat.append(time.perf_counter() - t0)


def _worker(
    op: str,
    address: str,
    key: str,
    clients: int,
    first: int,
    start_at: float,
    seconds: float,
    out: mp.Queue,
    interval: float = 0.0,
) -> None:
    import grpc

    from depot.manifest.v1 import manifest_pb2_grpc
    from depot.metadata.v1 import metadata_pb2_grpc

    async def main() -> list[float]:
        md = (("authorization", f"Bearer {key}"),)
        # Several connections per process, as many clients would open: one
        # HTTP/2 connection is not the limit, and the server's worker
        # processes (which the kernel assigns per connection) share the load.
        # Without a local subchannel pool, channels to one address share one
        # connection.
        options = [("grpc.use_local_subchannel_pool", 1)]
        channels = [grpc.aio.insecure_channel(address, options=options) for _ in range(min(clients, 8))]
        stubs = [
            (metadata_pb2_grpc.ArtifactServiceStub(ch), manifest_pb2_grpc.ManifestServiceStub(ch)) for ch in channels
        ]
        lat: list[float] = []
        fn = {
            "commit_10_files": _commit_client,
            "commit_10_files_5calls": _commit_client_5calls,
        }.get(op) or functools.partial(_resolve_client, interval=interval)
        await asyncio.sleep(max(0.0, start_at - time.time()))
        deadline = time.monotonic() + seconds
        await asyncio.gather(*(fn(stubs[i % len(stubs)], md, first + i, deadline, lat) for i in range(clients)))
        for ch in channels:
            await ch.close()
        return lat

    try:
        import uvloop

        out.put(uvloop.run(main()))
    except ImportError:
        out.put(asyncio.run(main()))


def run_op(op: str, address: str, key: str, clients: int, procs: int, seconds: float, rate: float = 0.0) -> dict:
    """``rate`` > 0: the clients together send ``rate`` requests/s (open loop)."""
    ctx = mp.get_context("spawn")
    q: mp.Queue = ctx.Queue()
    procs = max(1, min(procs, clients))
    start_at = time.time() + 2.0  # every worker starts together, after imports
    ps = []
    first = 0
    for i in range(procs):
        n = clients // procs + (1 if i < clients % procs else 0)
        interval = clients / rate if rate else 0.0
        p = ctx.Process(target=_worker, args=(op, address, key, n, first, start_at, seconds, q, interval))
        p.start()
        ps.append(p)
        first += n
    lat: list[float] = []
    for _ in ps:
        lat += q.get()
    for p in ps:
        p.join()
    lat.sort()
    return {
        "op": op + ("_paced" if rate else ""),
        "clients": clients,
        "offered_per_s": rate or None,
        "ops_per_s": round(len(lat) / seconds, 1),
        "p50_ms": round(statistics.median(lat) * 1000, 2) if lat else None,
        "p99_ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000, 2) if lat else None,
        "ops": len(lat),
    }


def _median_line(runs: list[dict]) -> dict:
    first = runs[0]
    out = {k: first[k] for k in ("op", "clients", "offered_per_s", "server_workers")}
    out["runs"] = len(runs)
    for field in ("ops_per_s", "p50_ms", "p99_ms"):
        out[field] = statistics.median(r[field] for r in runs)
    out["median_of_runs"] = True
    return out


def _plan(opts: argparse.Namespace) -> list[tuple[str, int, float]]:
    """(op, clients, offered rate or 0 for a closed loop), in run order."""
    ops = set(opts.ops.split(","))
    unknown = ops - {"commit", "commit_baseline", "resolve"}
    if unknown:
        raise SystemExit(f"unknown --ops {', '.join(sorted(unknown))}: use commit, commit_baseline, resolve")
    plan: list[tuple[str, int, float]] = []
    if "commit_baseline" in ops:
        plan.append(("commit_10_files_5calls", opts.commit_clients, 0.0))
    if "commit" in ops:
        plan.append(("commit_10_files", opts.commit_clients, 0.0))
    if "resolve" in ops:
        plan.append(("resolve_alias", opts.resolve_clients, 0.0))
        plan += [("resolve_alias", opts.resolve_clients, float(r)) for r in opts.resolve_rates.split(",") if r]
    return plan


def _ensure_team(address: str, key: str) -> None:
    """Creates the team ``bench`` logs into: a server creates entities only
    when asked to (a superuser's typo must not create one)."""
    import grpc

    from depot.metadata.v1 import metadata_pb2 as pb
    from depot.metadata.v1 import metadata_pb2_grpc

    with grpc.insecure_channel(address) as ch:
        stub = metadata_pb2_grpc.AccessServiceStub(ch)
        try:
            stub.CreateEntity(
                pb.CreateEntityRequest(entity_id="bench", entity=pb.Entity(kind="team")),
                metadata=(("authorization", f"Bearer {key}"),),
            )
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.ALREADY_EXISTS:
                raise


def _run_plan(opts: argparse.Namespace, address: str, key: str, workers: int | None) -> list[dict]:
    _ensure_team(address, key)
    medians = []
    for op, clients, rate in _plan(opts):
        if opts.warmup:
            # Not reported: the first seconds against a fresh server (cold
            # statement caches, empty tables) are not its steady state.
            run_op(op, address, key, clients, opts.procs, opts.warmup, rate=rate)
        runs = []
        for _ in range(opts.repeat):
            res = run_op(op, address, key, clients, opts.procs, opts.seconds, rate=rate)
            res["server_workers"] = workers
            print(json.dumps(res), flush=True)
            runs.append(res)
        medians.append(_median_line(runs))
        if len(runs) > 1:
            print(json.dumps(medians[-1]), flush=True)
    return medians


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=2.0, help="seconds of each op run first and not reported")
    ap.add_argument("--commit-clients", type=int, default=32)
    ap.add_argument("--resolve-clients", type=int, default=200)
    # One client process by default: on a small machine every client process
    # takes CPU from the server it measures (2 processes: about 12% fewer
    # commits/s here).
    ap.add_argument("--procs", type=int, default=1, help="client processes per op (asyncio clients share them)")
    ap.add_argument(
        "--resolve-rates",
        default="500,1000",
        help="also resolve at these total offered rates (open loop, requests/s, comma-separated); '' = skip",
    )
    ap.add_argument(
        "--ops",
        default="commit_baseline,commit,resolve",
        help="comma-separated: commit, commit_baseline (the same versions in five calls), resolve",
    )
    ap.add_argument("--repeat", type=int, default=1, help="runs per op; with more than one, a median line follows")
    ap.add_argument(
        "--workers",
        default="2",
        help="DEPOT_WORKERS of the server started; a comma-separated list runs the plan once per value, "
        "each on a fresh server, then prints ops_per_s ratios against the first",
    )
    ap.add_argument("--address", help="use a running server instead (with --api-key)")
    ap.add_argument("--api-key")
    opts = ap.parse_args()
    _plan(opts)  # refuse unknown ops before starting anything
    if opts.address:
        _run_plan(opts, opts.address, opts.api_key or os.environ["DEPOT_API_KEY"], None)
        return
    by_workers: dict[int, list[dict]] = {}
    for workers in [int(w) for w in opts.workers.split(",")]:
        with tempfile.TemporaryDirectory(prefix="depot-bench-") as tmp:
            proc, address, key = start_allinone(Path(tmp), workers)
            try:
                by_workers[workers] = _run_plan(opts, address, key, workers)
            finally:
                proc.terminate()
                proc.wait(30)
    baseline, *others = by_workers
    for workers in others:
        for base, line in zip(by_workers[baseline], by_workers[workers]):
            ratio = line["ops_per_s"] / base["ops_per_s"] if base["ops_per_s"] else None
            out = {"op": line["op"], "offered_per_s": line["offered_per_s"], "server_workers": workers}
            out[f"ops_per_s_ratio_vs_{baseline}_workers"] = round(ratio, 2) if ratio else None
            print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
