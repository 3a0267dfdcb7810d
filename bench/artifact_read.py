"""A large logged version read back through the SDK: ``files()``, ``get_entry`` and the W&B export.

    python bench/artifact_read.py [--entries 10000000] [--repeat 3] [--lookups 200]

Builds a manifest of ``--entries`` S3-listing-shaped entries with the native
writer straight into an all-in-one server's blob directory (as
``bench/manifest_read.py`` does, whose builder and server start it reuses),
commits it as version ``bench/p/big:v0`` (the ref signed with the server's
internal secret, as the manifest service would), then from client processes
(so each peak RSS is theirs alone) runs what a user runs. JSON lines:

- ``files``: ``for e in artifact.files()`` over every entry: ``entries_per_s``
  (and per CPU second of the client), ``client_peak_rss_mib`` (ru_maxrss);
  one line per run, then the median.
- ``get_entry``: ``artifact.get_entry(path)`` of ``--lookups`` random paths:
  ``p50_ms``, ``p99_ms``.
- ``export``: ``write_wandb_manifest`` of the version to a file (what
  ``depot artifact export -o`` does): ``wall_s``, ``client_peak_rss_mib``.
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
import uuid
from pathlib import Path

from _harness import start_allinone, store_manifest
from manifest_read import ENTITY, _ensure_team, _entries, _path

NAME = f"{ENTITY}/p/big:v0"


def build(blobs: Path, n: int) -> tuple[dict[str, object], dict[str, object]]:
    """Writes the manifest where the service stores it; returns its ManifestRef fields and a report line."""
    t0 = time.perf_counter()
    manifest_id, summary, _ = store_manifest(blobs, ENTITY, _entries(n))
    ref = {
        "entity": ENTITY,
        "manifest_id": manifest_id,
        "digest": summary.digest,
        "digest_algorithm": summary.digest_algorithm,
        "size": summary.total_size,
        "file_count": summary.count,
    }
    line = {"op": "build", "entries": n, "wall_s": round(time.perf_counter() - t0, 2)}
    return ref, line


def commit(data_dir: Path, address: str, key: str, fields: dict[str, object]) -> None:
    """Creates the version, signing the ref as the manifest service signs what it stores."""
    import grpc

    from depot.common.v1 import common_pb2
    from depot.metadata.v1 import metadata_pb2 as pb
    from depot.metadata.v1 import metadata_pb2_grpc
    from depot.services.allinone.app import internal_secret
    from depot.services.common.credentials import sign_manifest

    # Dated now, as a build would be: metadata honours a token for grace/2.
    fields = {**fields, "create_time_unix_ms": int(time.time() * 1000)}
    token = sign_manifest(internal_secret(data_dir), *fields.values())
    ref = common_pb2.ManifestRef(token=token, **fields)  # type: ignore[arg-type]
    with grpc.insecure_channel(address) as ch:
        metadata_pb2_grpc.ArtifactServiceStub(ch).CreateArtifactVersion(
            pb.CreateArtifactVersionRequest(
                parent=f"entities/{ENTITY}/projects/p",
                artifact="big",
                type="dataset",
                manifest=ref,
                request_id=uuid.uuid4().hex,
            ),
            metadata=(("authorization", f"Bearer {key}"),),
        )


def _client(mode: str, address: str, key: str, n: int, lookups: int, out_dir: str) -> dict[str, object]:
    """Runs in its own process; reports with its peak RSS."""
    import depot
    from depot._wandb import write_wandb_manifest

    art = depot.Api(address, key).artifact(NAME)
    out: dict[str, object]
    if mode == "files":
        t0, c0 = time.perf_counter(), time.process_time()
        count = 0
        for _ in art.files():
            count += 1
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        assert count == n, (count, n)
        # CPU seconds too: on a shared machine the wall clock measures the neighbours.
        out = {
            "op": "files",
            "entries": count,
            "wall_s": round(wall, 2),
            "entries_per_s": round(count / wall),
            "cpu_s": round(cpu, 2),
            "entries_per_cpu_s": round(count / cpu),
        }
    elif mode == "get_entry":
        rng = random.Random(11)
        lat = []
        for _ in range(lookups):
            name = _path(rng.randrange(n))
            t0 = time.perf_counter()
            assert art.get_entry(name).path == name
            lat.append(time.perf_counter() - t0)
        lat.sort()
        out = {
            "op": "get_entry",
            "lookups": lookups,
            "p50_ms": round(lat[len(lat) // 2] * 1000, 2),
            "p99_ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000, 2),
        }
    else:
        t0 = time.perf_counter()
        with open(Path(out_dir) / "wandb_manifest.json", "w") as f:
            count = write_wandb_manifest(art, f)
        wall = time.perf_counter() - t0
        out = {"op": "export", "entries": count, "wall_s": round(wall, 2), "entries_per_s": round(count / wall)}
    out["client_peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return out


def _run_client(mode: str, address: str, key: str, n: int, lookups: int, out_dir: Path) -> dict[str, object]:
    cmd = [sys.executable, __file__, "--client", mode, address, key, str(n), str(lookups), str(out_dir)]
    res = subprocess.run(cmd, check=True, capture_output=True, text=True)
    line: dict[str, object] = json.loads(res.stdout.strip().splitlines()[-1])
    return line


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        mode, address, key, n, lookups, out_dir = sys.argv[2:8]
        print(json.dumps(_client(mode, address, key, int(n), int(lookups), out_dir)), flush=True)
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--entries", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--lookups", type=int, default=200)
    ap.add_argument("--skip-export", action="store_true", help="no export run (it writes ~1.2 KB per entry)")
    opts = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="depot-bench-artifact-read-") as tmp:
        data_dir = Path(tmp)
        fields, line = build(data_dir / "blobs", opts.entries)
        print(json.dumps(line), flush=True)
        proc, address, key = start_allinone(data_dir)
        try:
            _ensure_team(address, key)
            commit(data_dir, address, key, fields)
            runs = []
            for _ in range(opts.repeat):
                runs.append(_run_client("files", address, key, opts.entries, 0, data_dir))
                print(json.dumps(runs[-1]), flush=True)
            median: dict[str, object] = {"op": "files", "runs": len(runs), "median_of_runs": True}
            for field in ("entries_per_s", "entries_per_cpu_s", "wall_s", "client_peak_rss_mib"):
                median[field] = statistics.median(float(str(r[field])) for r in runs)
            print(json.dumps(median), flush=True)
            print(json.dumps(_run_client("get_entry", address, key, opts.entries, opts.lookups, data_dir)), flush=True)
            if not opts.skip_export:
                print(json.dumps(_run_client("export", address, key, opts.entries, 0, data_dir)), flush=True)
        finally:
            proc.terminate()
            proc.wait(30)


if __name__ == "__main__":
    main()
