"""SDK writers across server SIGKILLs: do any errors reach the callers?

A real ``depot server`` process on a fixed data dir and port is SIGKILLed
and started again every ``--interval`` seconds while ``--writers`` threads,
each with its own run, log artifacts through the SDK: a small file (sent
inline with the manifest) and, every other version, a medium one (64 KiB to
1.5 MiB, so it goes through an UploadBlob stream, some in two chunks). After
the last restart every acknowledged version is downloaded and compared byte
for byte with what its writer wrote, and each collection must hold exactly
as many versions as were acknowledged (a retried commit is not a second one).

The embedded PostgreSQL runs outside the server process (pg_ctl starts it
as a daemon), so it survives the kill and the next start finds it running;
``--database-url`` points the server at another PostgreSQL instead (the
test suite passes its own).

    python bench/restarts.py --runs 5 --writers 16 --kills 5 --interval 2.5

prints one JSON line per run: errors (must be 0), acked, verified,
mismatches, kills, restart_s (median time for the port to answer again).
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import hashlib
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

START_S = 60.0
INLINE_MAX = 64 * 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Outcome:
    errors: list[str] = field(default_factory=list)
    acked: int = 0
    verified: int = 0
    mismatches: list[str] = field(default_factory=list)
    kills: int = 0
    restart_s: list[float] = field(default_factory=list)
    wall_s: float = 0.0
    verify_s: float = 0.0
    kill_times: list[float] = field(default_factory=list)
    up_times: list[float] = field(default_factory=list)
    ack_times: list[float] = field(default_factory=list)

    def acks_per_interval(self) -> list[int]:
        """Acknowledged logs before the first kill, between kills, after the last."""
        edges = [float("-inf"), *self.kill_times, float("inf")]
        return [sum(lo <= t < hi for t in self.ack_times) for lo, hi in zip(edges, edges[1:])]

    def recovery_s(self) -> list[float]:
        """Per restart: from the port answering again to the next acknowledged log."""
        out = []
        for up in self.up_times:
            after = [t for t in self.ack_times if t >= up]
            if after:
                out.append(min(after) - up)
        return out

    def summary(self) -> dict[str, object]:
        return {
            "errors": len(self.errors),
            "first_errors": self.errors[:3],
            "acked": self.acked,
            "verified": self.verified,
            "mismatches": len(self.mismatches),
            "kills": self.kills,
            "restart_s_median": round(statistics.median(self.restart_s), 3) if self.restart_s else None,
            "wall_s": round(self.wall_s, 1),
            "verify_s": round(self.verify_s, 1),
            "acks_per_interval": self.acks_per_interval(),
            "recovery_s_median": round(statistics.median(self.recovery_s()), 3) if self.recovery_s() else None,
            "recovery_s_max": round(max(self.recovery_s()), 3) if self.recovery_s() else None,
        }


class ServerProcess:
    """``depot server`` on a fixed data dir and port, killed and restarted at will."""

    def __init__(self, data_dir: Path, port: int, database_url: str | None, log: Path):
        self.data_dir = data_dir
        self.port = port
        self.address = f"127.0.0.1:{port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("DEPOT_")}
        self.env.update(DEPOT_DATA_DIR=str(data_dir), DEPOT_LISTEN=self.address, DEPOT_WORKERS="1")
        if database_url:
            self.env["DEPOT_DATABASE_URL"] = database_url
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> float:
        """Starts the server; returns the seconds until its port accepts connections."""
        t0 = time.monotonic()
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "depot.cli", "server"], env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        deadline = t0 + START_S
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"depot server exited with {self.proc.returncode}; see {self.log}")
            if (self.data_dir / "server.json").exists() and _port_open(self.port):
                return time.monotonic() - t0
            if time.monotonic() > deadline:
                raise RuntimeError(f"depot server did not start in {START_S} s; see {self.log}")
            time.sleep(0.02)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)
        # A killed server leaves its server.json: the next start must not be
        # taken as up before it writes its own.
        (self.data_dir / "server.json").unlink(missing_ok=True)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def _writer(
    i: int, address: str, key: str, work: Path, stop: threading.Event, max_versions: int, out: Outcome, acked: list
) -> None:
    import depot

    rng = random.Random(i)
    try:
        run = depot.init(project="faults", job_type="writer", address=address, api_key=key)
    except Exception as e:  # noqa: BLE001 - counted: an error that reached the caller
        out.errors.append(f"writer {i} init: {type(e).__name__}: {e}")
        return
    src = work / f"w{i}"
    src.mkdir(parents=True)
    n = 0
    while not stop.is_set() and n < max_versions:
        for old in src.iterdir():
            old.unlink()
        files = {"small.txt": rng.randbytes(rng.randint(1, 4096))}
        if n % 2 == 1:
            files["medium.bin"] = rng.randbytes(rng.randint(INLINE_MAX + 1, 1536 * 1024))
        for name, data in files.items():
            (src / name).write_bytes(data)
        art = depot.Artifact(f"w{i}", type="dataset")
        art.add_dir(src)
        try:
            run.log_artifact(art).wait()
        except Exception as e:  # noqa: BLE001 - counted: an error that reached the caller
            out.errors.append(f"writer {i} log {n}: {type(e).__name__}: {e}")
        else:
            acked.append((art.qualified_name, {k: hashlib.sha256(v).hexdigest() for k, v in files.items()}))
            out.ack_times.append(time.monotonic())
        n += 1
    try:
        run.finish()
    except Exception as e:  # noqa: BLE001 - counted
        out.errors.append(f"writer {i} finish: {type(e).__name__}: {e}")


def run_once(
    data_dir: Path,
    *,
    writers: int = 12,
    kills: int = 4,
    interval_s: float = 2.5,
    max_versions: int = 200,
    database_url: str | None = None,
) -> Outcome:
    """One kill/restart run; the caller owns ``data_dir`` (and its cleanup)."""
    import depot

    out = Outcome()
    t0 = time.monotonic()
    server = ServerProcess(data_dir, free_port(), database_url, data_dir.parent / f"{data_dir.name}-server.log")
    server.start()
    key = (data_dir / "admin.key").read_text().strip()
    work = Path(tempfile.mkdtemp(prefix="restarts-", dir=data_dir.parent))
    stop = threading.Event()
    acked: list[tuple[str, dict[str, str]]] = []
    threads = [
        threading.Thread(target=_writer, args=(i, server.address, key, work, stop, max_versions, out, acked))
        for i in range(writers)
    ]
    try:
        for t in threads:
            t.start()
        for _ in range(kills):
            time.sleep(interval_s * (0.8 + 0.4 * random.random()))
            server.kill()
            out.kill_times.append(time.monotonic())
            out.kills += 1
            out.restart_s.append(server.start())
            out.up_times.append(time.monotonic())
        time.sleep(interval_s)
        stop.set()
        for t in threads:
            # A writer's last log retries for at most the SDK's restart window.
            t.join(120)
        out.acked = len(acked)
        verify_started = time.monotonic()
        api = depot.Api(server.address, key)

        def verify(item: tuple[str, dict[str, str]]) -> str | None:
            qualified, files = item
            root = work / "verify" / qualified.replace("/", "_")
            try:
                api.artifact(qualified).download(root)
                got = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in root.iterdir()}
            except Exception as e:  # noqa: BLE001 - a version that does not download is a mismatch
                return f"{qualified}: {type(e).__name__}: {e}"
            return None if got == files else f"{qualified}: downloaded files differ from the ones logged"

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            for problem in pool.map(verify, acked):
                if problem is None:
                    out.verified += 1
                else:
                    out.mismatches.append(problem)
        per_collection = collections.Counter(qualified.split(":")[0] for qualified, _ in acked)
        for collection, count in per_collection.items():
            stored = len(api.artifact_versions(collection))
            if stored != count:
                out.mismatches.append(f"{collection}: {stored} versions stored, {count} acknowledged")
        api.client.close()
        out.verify_s = time.monotonic() - verify_started
    finally:
        stop.set()
        server.stop()
    out.wall_s = time.monotonic() - t0
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--writers", type=int, default=16)
    ap.add_argument("--kills", type=int, default=5)
    ap.add_argument("--interval", type=float, default=2.5, help="seconds between kills (jittered ±20%%)")
    ap.add_argument("--database-url", default=None, help="default: the embedded PostgreSQL of the data dir")
    args = ap.parse_args()
    from depot.services.allinone.postgres import LocalPostgres

    for n in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="depot-restarts-") as tmp:
            data = Path(tmp) / "data"
            try:
                out = run_once(
                    data,
                    writers=args.writers,
                    kills=args.kills,
                    interval_s=args.interval,
                    database_url=args.database_url,
                )
            finally:
                if args.database_url is None:
                    LocalPostgres.for_data_dir(data).destroy()
            print(json.dumps({"bench": "restarts", "run": n, "writers": args.writers, **out.summary()}), flush=True)


if __name__ == "__main__":
    main()
