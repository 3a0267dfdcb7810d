"""Shared pieces of the benches: a ``depot server`` process and a stored manifest.

Benches import this as a sibling module (``bench/`` is on their path and on
the test suite's ``pythonpath``).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

from depot.native import ManifestSummary, ManifestWriter


def start_allinone(data_dir: Path, workers: int = 1) -> tuple[subprocess.Popen[bytes], str, str]:
    """``depot server`` on embedded defaults in ``data_dir``: (process, address, admin key)."""
    env = dict(os.environ, DEPOT_DATA_DIR=str(data_dir), DEPOT_LISTEN="127.0.0.1:0", DEPOT_WORKERS=str(workers))
    env.pop("DEPOT_DATABASE_URL", None)
    env.pop("DEPOT_STORAGE_URL", None)
    log = open(data_dir / "server.log", "wb")  # noqa: SIM115 - lives as long as the server
    proc = subprocess.Popen([sys.executable, "-m", "depot.services.allinone"], env=env, stdout=log, stderr=log)
    info = data_dir / "server.json"
    deadline = time.monotonic() + 120
    while not info.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"server did not start; see {data_dir / 'server.log'}")
        time.sleep(0.2)
    meta = json.loads(info.read_text())
    return proc, meta["address"], Path(meta["admin_key_file"]).read_text().strip()


def store_manifest(
    blobs: Path, entity: str, entries: Iterable[tuple[str, str, str, int, str]]
) -> tuple[str, ManifestSummary, Path]:
    """Writes a manifest where a local blob store keeps it: (manifest id, summary, its file).

    The id is the SHA-256 of the bytes, hashed as they are written, as the
    manifest service names what it stores.
    """
    tmp = blobs / "manifest.tmp"
    tmp.parent.mkdir(parents=True, exist_ok=True)
    sha = hashlib.sha256()

    class Sink(io.RawIOBase):
        def __init__(self, f: io.BufferedWriter) -> None:
            self.f = f

        def write(self, b: bytes) -> int:  # type: ignore[override]
            sha.update(b)
            return self.f.write(b)

    with open(tmp, "wb") as f:
        w = ManifestWriter(Sink(f), "md5")
        w.add_many(entries)
        summary = w.close()
    manifest_id = sha.hexdigest()
    dest = blobs / entity / "manifests" / manifest_id[:2] / manifest_id
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, dest)
    return manifest_id, summary, dest
