"""Files up and down through ``depot server``, beside a ``cp -r`` + hash floor.

Starts ``depot server`` on embedded defaults (its own PostgreSQL and blob
directory in a temp data dir, as the README's first command runs it), then
per case and repeat:

- writes fresh files (new content each repeat, so nothing deduplicates),
- ``add_dir`` (build: the client hashes every file) and
  ``log_artifact().wait()`` (log: FindMissingBlobs, batches and streams,
  the manifest, the commit),
- downloads the version into an empty directory (every file verified),
- the floor on the same files: ``cp -r`` of the source tree, then xxh3 of
  every copied file through ``depot.native.hash_file``.

    python bench/transfer.py --repeat 3
    python bench/transfer.py --cases small --repeat 5
    python bench/transfer.py --phases floor   # log and floor only, no download

prints one JSON line per run (``log_s``, ``log_files_per_s``,
``log_gb_per_s``, ``download_s``, ...; GB = 10^9 bytes) and a median line
per case (``"run": "median"``). The log step also reports the CPU it cost:
the client's user/system seconds and the server process's, with the
server's minor page faults (``log_server_sys_s`` is where the kernel's
share shows: page-cache writes and inode allocation on the blob store's
filesystem).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASES = {
    "small": (10_000, 4096),  # 10,000 x 4 KiB
    "large": (4, 256 * 1024 * 1024),  # 4 x 256 MiB
}
START_S = 120.0


def start_server(data_dir: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEPOT_")}
    env.update(DEPOT_DATA_DIR=str(data_dir), DEPOT_LISTEN="127.0.0.1:0")
    log = open(data_dir.parent / "server.log", "wb")  # noqa: SIM115 - lives as long as the server
    proc = subprocess.Popen([sys.executable, "-m", "depot.cli", "server"], env=env, stdout=log, stderr=log)
    info = data_dir / "server.json"
    deadline = time.monotonic() + START_S
    while not info.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"depot server did not start; see {data_dir.parent / 'server.log'}")
        time.sleep(0.1)
    meta = json.loads(info.read_text())
    return proc, meta["address"], Path(meta["admin_key_file"]).read_text().strip()


def server_cpu(pid: int) -> tuple[float, float, int]:
    """The server process's (user, system) CPU seconds and minor page faults so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick, int(fields[7])


def ensure_team(address: str, key: str, team: str) -> None:
    import grpc

    from depot.metadata.v1 import metadata_pb2 as pb
    from depot.metadata.v1 import metadata_pb2_grpc

    with grpc.insecure_channel(address) as ch:
        try:
            metadata_pb2_grpc.AccessServiceStub(ch).CreateEntity(
                pb.CreateEntityRequest(entity_id=team, entity=pb.Entity(kind="team")),
                metadata=(("authorization", f"Bearer {key}"),),
            )
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.ALREADY_EXISTS:
                raise


def write_files(root: Path, count: int, size: int, seed: int, pool: bytes) -> None:
    """``count`` files of ``size`` bytes; a per-file header makes each one's content new."""
    root.mkdir(parents=True)
    per_dir = 1000
    for i in range(count):
        d = root / f"d{i // per_dir:03d}"
        if i % per_dir == 0:
            d.mkdir()
        head = f"{seed}:{i}:".encode()
        start = (i * 4099) % max(1, len(pool) - size)
        body = pool[start : start + size - len(head)] if size > len(head) else b""
        (d / f"f{i:06d}.bin").write_bytes((head + body)[:size])


def floor(src: Path, dst: Path) -> float:
    """``cp -r`` then xxh3 of every copied file: the machine's own copy + verify."""
    from depot.native import hash_file

    t0 = time.perf_counter()
    subprocess.run(["cp", "-r", str(src), str(dst)], check=True)
    for dirpath, _, names in os.walk(dst):
        for name in names:
            hash_file(os.path.join(dirpath, name), ("xxh3_128",))
    return time.perf_counter() - t0


def run_case(
    case: str,
    count: int,
    size: int,
    seed: int,
    server: tuple[int, str, str],
    work: Path,
    pool: bytes,
    phases: set[str],
) -> dict:
    import depot

    src = work / "src"
    write_files(src, count, size, seed, pool)
    pid, address, key = server
    run = depot.init(project="transfer", job_type="bench", address=address, api_key=key, entity="bench")
    try:
        t0 = time.perf_counter()
        art = depot.Artifact(f"{case}-{seed}", type="dataset")
        art.add_dir(src)
        t1 = time.perf_counter()
        c0, s0 = os.times(), server_cpu(pid)
        run.log_artifact(art).wait()
        t2 = time.perf_counter()
        c1, s1 = os.times(), server_cpu(pid)
    finally:
        run.finish()
    total = count * size
    log_s = t2 - t1
    out = {
        "case": case,
        "files": count,
        "file_bytes": size,
        "build_s": round(t1 - t0, 3),
        "log_s": round(log_s, 3),
        "log_files_per_s": round(count / log_s),
        "log_gb_per_s": round(total / log_s / 1e9, 3),
        # CPU seconds of the log step (the client's threads, the server process)
        "log_client_user_s": round(c1.user - c0.user, 3),
        "log_client_sys_s": round(c1.system - c0.system, 3),
        "log_server_user_s": round(s1[0] - s0[0], 3),
        "log_server_sys_s": round(s1[1] - s0[1], 3),
        "log_server_page_faults": s1[2] - s0[2],
    }
    if "download" in phases:
        api = depot.Api(address, key)
        got = api.artifact(f"bench/transfer/{case}-{seed}:latest")
        t3 = time.perf_counter()
        got.download(work / "down")
        down_s = time.perf_counter() - t3
        out["download_s"] = round(down_s, 3)
        out["download_files_per_s"] = round(count / down_s)
        out["download_gb_per_s"] = round(total / down_s / 1e9, 3)
    if "floor" in phases:
        floor_s = floor(src, work / "copy")
        out["floor_cp_hash_s"] = round(floor_s, 3)
        out["floor_files_per_s"] = round(count / floor_s)
        out["floor_gb_per_s"] = round(total / floor_s / 1e9, 3)
    return out


def median_line(runs: list[dict]) -> dict:
    out: dict = {k: runs[0][k] for k in ("case", "files", "file_bytes")}
    out["run"] = "median"
    out["repeats"] = len(runs)
    for k in runs[0]:
        if k not in out and isinstance(runs[0][k], (int, float)):
            out[k] = statistics.median(r[k] for r in runs)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--cases", default="small,large", help="comma-separated: small (10,000 x 4 KiB), large (4 x 256 MiB)"
    )
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--small-count", type=int, default=CASES["small"][0])
    ap.add_argument("--large-mib", type=int, default=CASES["large"][1] >> 20, help="size of each large file")
    ap.add_argument(
        "--phases",
        default="download,floor",
        help="comma-separated steps after the log (always run): download, floor; empty for the log alone",
    )
    opts = ap.parse_args()
    phases = {p for p in opts.phases.split(",") if p}
    if unknown_phases := phases - {"download", "floor"}:
        raise SystemExit(f"unknown --phases {', '.join(sorted(unknown_phases))}: use download, floor")
    cases = {"small": (opts.small_count, CASES["small"][1]), "large": (CASES["large"][0], opts.large_mib << 20)}
    chosen = opts.cases.split(",")
    if unknown := set(chosen) - set(cases):
        raise SystemExit(f"unknown --cases {', '.join(sorted(unknown))}: use small, large")
    # One random pool, sliced per file: fresh-looking content without paying
    # for a gigabyte of randomness per repeat.
    pool = os.urandom(max(cases[c][1] for c in chosen) + (1 << 20))
    with tempfile.TemporaryDirectory(prefix="depot-transfer-") as tmp:
        proc, address, key = start_server(Path(tmp) / "data")
        server = (proc.pid, address, key)
        try:
            ensure_team(address, key, "bench")
            for case in chosen:
                count, size = cases[case]
                runs = []
                for r in range(opts.repeat):
                    work = Path(tmp) / f"{case}-{r}"
                    work.mkdir()
                    try:
                        res = run_case(case, count, size, r, server, work, pool, phases)
                    finally:
                        shutil.rmtree(work, ignore_errors=True)
                    res["run"] = r
                    print(json.dumps(res), flush=True)
                    runs.append(res)
                print(json.dumps(median_line(runs)), flush=True)
        finally:
            proc.terminate()
            proc.wait(60)


if __name__ == "__main__":
    main()
