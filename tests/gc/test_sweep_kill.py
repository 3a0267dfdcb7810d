"""SIGKILL the collector at random points of its mark and of its sweep: nothing live is lost.

A driver process runs one pass (BlobCollector, as the GC service does) and
prints when its mark starts and when its sweep starts listing blobs; the
test kills it after a seeded random delay from one of those, then lets a
last pass run to the end. Every live version must still download and
verify, and every garbage key must be gone (including what a kill left
moved aside in the sweep's trash).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.gc_store import GRACE, age_all, local_server, log, sql, sweep, verify
from support.servers import ServerThread

from depot.services.manifest.public import TRASH


@pytest.fixture
def local(tmp_path: Path, database_url: str) -> Iterator[ServerThread]:
    yield from local_server(tmp_path, database_url)


_DRIVER = r"""
import asyncio, sys
from pathlib import Path
import asyncpg
from depot.services.gc.sweep import BlobCollector
from depot.services.manifest.public import open_store

class Announcing:
    def __init__(self, inner):
        self._inner = inner
        self._said = False
    def __getattr__(self, name):
        return getattr(self._inner, name)
    def list_sorted(self, prefix):
        if prefix.endswith("/blobs/") and not self._said:
            self._said = True
            print("SWEEP", flush=True)
        return self._inner.list_sorted(prefix)

async def main(dsn, url, work, grace):
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    store = Announcing(await open_store(url))
    print("MARK", flush=True)
    result = await BlobCollector(pool, store, grace, Path(work)).run("", dry_run=False)
    print("DONE", result, flush=True)

asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])))
"""

GARBAGE = 6000


def _garbage(root: Path, rng: random.Random) -> set[str]:
    keys = set()
    for _ in range(GARBAGE):
        h = rng.randbytes(16).hex()
        keys.add(f"team/blobs/xxh3_128/{h[:2]}/{h}")
    for _ in range(20):
        h = rng.randbytes(32).hex()
        keys.add(f"team/manifests/{h[:2]}/{h}")
    for key in keys:
        p = root / key
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"garbage " + key.encode())
    return keys


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sigkill_at_random_points_then_a_pass_loses_nothing(local, database_url, tmp_path, seed) -> None:
    rng = random.Random(seed)
    blobs = tmp_path / "blobs"
    live = {
        "a": {"big.bin": os.urandom(400_000), "small.txt": b"s" * 10},
        "b": {f"f{i}.txt": f"file {i} {seed}".encode() for i in range(300)},
    }
    for name, files in live.items():
        log(local, name, files)
    log(local, "purged", {"p.bin": os.urandom(100_000)})
    asyncio.run(
        sql(
            database_url,
            "DELETE FROM versions WHERE collection_id IN (SELECT id FROM collections WHERE name = 'purged')",
        )
    )
    garbage = _garbage(blobs, rng)
    age_all(blobs)

    killed = 0
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for attempt in range(4):
        phase = "MARK" if attempt % 2 == 0 else "SWEEP"
        proc = subprocess.Popen(
            [sys.executable, "-c", _DRIVER, database_url, blobs.as_uri(), str(tmp_path / "work"), str(GRACE)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith(phase):
                break
        time.sleep(rng.uniform(0, 0.05 if phase == "MARK" else 0.4))
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        proc.stdout.close()
        killed += proc.returncode == -signal.SIGKILL

    assert killed >= 1
    last = asyncio.run(sweep(database_url, blobs.as_uri(), tmp_path / "work"))
    assert last.errors == []
    left = {str(p.relative_to(blobs)) for p in blobs.rglob("*") if p.is_file()}
    assert not garbage & left
    assert not [p for p in (blobs / TRASH).rglob("*") if p.is_file()]
    for name in live:
        verify(local, f"team/p/{name}:v0", tmp_path / f"out-{name}")
    # A pass after the last one finds nothing more to free.
    again = asyncio.run(sweep(database_url, blobs.as_uri(), tmp_path / "work"))
    assert (again.blobs_deleted, again.manifests_deleted, again.errors) == (0, 0, [])
