"""Reading a large manifest through the manifest service: full iteration and single-entry lookups.

    python bench/manifest_read.py [--entries 10000000] [--repeat 3] [--lookups 200]

Builds a manifest of ``--entries`` synthetic entries shaped like an S3
listing (paths of ~40 characters, md5 ETags, ``s3://`` refs) with the native
writer, straight into the blob directory of an all-in-one server (embedded
PostgreSQL, local blobs) started in a subprocess on a temporary data dir,
then reads it from client processes (so their peak RSS is theirs alone)
with the SDK's streaming reader (``depot._manifest_read.iter_entries``:
ReadManifest with raw blocks, decoded by the native codec). JSON lines:

- ``build``: the manifest's size and the seconds to write it (setup, not a target).
- ``scan_blocks``: the native block-index scan of the stored file (what the
  server does once per manifest before it can seek), wall and CPU.
- ``iterate``: every entry, in order; ``entries_per_s`` and the client's
  ``client_peak_rss_mib`` (ru_maxrss), and ``entries_per_client_cpu_s``
  (the rate per CPU-second of the client, which a busy machine does not
  distort). One line per run, then the median.
- ``get_entry``: ``--lookups`` random existing paths, one ReadManifest with
  ``names`` each (the server bisects its cached block index and decodes one
  block); ``p50_ms``/``p99_ms`` (the first lookup pays the index scan).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from _harness import start_allinone, store_manifest

ENTITY = "bench"


def _path(i: int) -> str:
    return f"dataset/part-{i // 1000:05d}/object-{i:09d}.jsonl.gz"


def _entries(n: int) -> Iterator[tuple[str, str, str, int, str]]:
    for i in range(n):
        p = _path(i)
        yield (
            p,
            "etag",
            f"{(i * 0x9E3779B97F4A7C15) & (2**128 - 1):032x}",
            (i * 7919) % 65536 + 1,
            f"s3://bench-bucket/{p}",
        )


def build(blobs: Path, n: int) -> tuple[str, dict]:
    """Writes the manifest into the local blob store (as the service stores it); returns its id."""
    t0 = time.perf_counter()
    manifest_id, _, dest = store_manifest(blobs, ENTITY, _entries(n))
    return manifest_id, {
        "op": "build",
        "entries": n,
        "manifest_mib": round(dest.stat().st_size / 2**20, 1),
        "wall_s": round(time.perf_counter() - t0, 2),
    }


def scan(path: Path) -> dict:
    from depot.native import MANIFEST_COMPILED, scan_blocks

    times, cpu = [], []
    for _ in range(3):
        t0, c0 = time.perf_counter(), time.process_time()
        with open(path, "rb") as f:
            blocks = scan_blocks(f)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return {
        "op": "scan_blocks",
        "blocks": len(blocks),
        "median_ms": round(statistics.median(times) * 1000, 1),
        "median_cpu_ms": round(statistics.median(cpu) * 1000, 1),
        "compiled": MANIFEST_COMPILED,
    }


def _client(mode: str, address: str, key: str, manifest_id: str, n: int, lookups: int) -> dict:
    """Runs in its own process: one iteration or the lookups; reports with its peak RSS."""
    from depot._client import Client
    from depot._manifest_read import iter_entries

    client = Client(address, key)
    try:
        if mode == "iterate":
            t0, c0 = time.perf_counter(), time.process_time()
            count = 0
            for batch in iter_entries(client, ENTITY, manifest_id):
                count += len(batch)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            assert count == n, (count, n)
            # Per CPU-second too: on a shared machine the wall rate is the
            # client's share of a core, not what the code can do.
            out = {
                "op": "iterate",
                "entries": count,
                "wall_s": round(wall, 2),
                "entries_per_s": round(count / wall),
                "client_cpu_s": round(cpu, 2),
                "entries_per_client_cpu_s": round(count / cpu),
            }
        else:
            rng = random.Random(11)
            lat = []
            for _ in range(lookups):
                name = _path(rng.randrange(n))
                t0 = time.perf_counter()
                got = [e for b in iter_entries(client, ENTITY, manifest_id, names=[name]) for e in b]
                lat.append(time.perf_counter() - t0)
                assert [e.path for e in got] == [name]
            lat.sort()
            out = {
                "op": "get_entry",
                "lookups": lookups,
                "p50_ms": round(lat[len(lat) // 2] * 1000, 2),
                "p99_ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000, 2),
            }
    finally:
        client.close()
    out["client_peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return out


def _run_client(mode: str, address: str, key: str, manifest_id: str, n: int, lookups: int) -> dict:
    cmd = [sys.executable, __file__, "--client", mode, address, key, manifest_id, str(n), str(lookups)]
    res = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def _ensure_team(address: str, key: str) -> None:
    import grpc

    from depot.metadata.v1 import metadata_pb2 as pb
    from depot.metadata.v1 import metadata_pb2_grpc

    with grpc.insecure_channel(address) as ch:
        stub = metadata_pb2_grpc.AccessServiceStub(ch)
        try:
            stub.CreateEntity(
                pb.CreateEntityRequest(entity_id=ENTITY, entity=pb.Entity(kind="team")),
                metadata=(("authorization", f"Bearer {key}"),),
            )
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.ALREADY_EXISTS:
                raise


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        mode, address, key, manifest_id, n, lookups = sys.argv[2:8]
        print(json.dumps(_client(mode, address, key, manifest_id, int(n), int(lookups))), flush=True)
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--entries", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--lookups", type=int, default=200)
    opts = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="depot-bench-read-") as tmp:
        data_dir = Path(tmp)
        manifest_id, line = build(data_dir / "blobs", opts.entries)
        print(json.dumps(line), flush=True)
        stored = data_dir / "blobs" / ENTITY / "manifests" / manifest_id[:2] / manifest_id
        print(json.dumps(scan(stored)), flush=True)
        proc, address, key = start_allinone(data_dir)
        try:
            _ensure_team(address, key)
            runs = []
            for _ in range(opts.repeat):
                runs.append(_run_client("iterate", address, key, manifest_id, opts.entries, 0))
                print(json.dumps(runs[-1]), flush=True)
            median = {"op": "iterate", "runs": len(runs), "median_of_runs": True}
            for field in ("entries_per_s", "wall_s", "entries_per_client_cpu_s", "client_peak_rss_mib"):
                median[field] = statistics.median(r[field] for r in runs)
            print(json.dumps(median), flush=True)
            print(
                json.dumps(_run_client("get_entry", address, key, manifest_id, opts.entries, opts.lookups)), flush=True
            )
        finally:
            proc.terminate()
            proc.wait(30)


if __name__ == "__main__":
    main()
