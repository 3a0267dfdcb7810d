"""The GCS JSON API over s3sim's synthetic key space, and a gs:// vs s3:// listing benchmark.

Serves, over ``s3sim.KeySpace`` (same keys, bodies and md5s as the S3
simulator, so an S3 and a GCS listing of one space record the same bytes):

- ``GET /storage/v1/b/{bucket}/o`` (objects.list): ``prefix``,
  ``startOffset``, ``maxResults`` (≤ 1000), ``pageToken`` (the next key);
  ``fields`` is ignored unless it is the trimmed form Depot sends, which gets
  the trimmed items (the full resource otherwise, as emulators answer);
- ``GET /storage/v1/b/{bucket}/o/{key}`` (objects.get): metadata, or the
  bytes with ``alt=media``; ``generation`` must be the object's own;
- ``/download/storage/v1/...`` for media as well.

Per object: ``md5Hash`` = base64 md5 of the body, ``crc32c`` a fixed
placeholder (nothing here checks it), ``generation`` = an integer derived
from the key. Knobs beyond s3sim's (latency, faults): ``denied`` buckets
answer 403 to everything; ``composite_every=k`` makes every k-th object a
composite one, without ``md5Hash``.

Benchmark (JSON lines on stdout: one per listing, then the medians)::

    python bench/gcssim.py --bench --objects 1000000 --repeat 3

runs each simulator in its own subprocess and each lister (Depot's
``write_s3_reference`` and ``write_gcs_reference``, same key space, same
concurrency) in a fresh subprocess, one after the other.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import dataclasses
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote

import s3sim

HERE = Path(__file__).resolve().parent
TRIMMED_FIELDS = "nextPageToken,items(name,size,md5Hash,crc32c,generation)"
_JSON = {"Content-Type": "application/json; charset=UTF-8"}


def generation_of(key: str) -> int:
    return int(hashlib.md5(("g" + key).encode()).hexdigest()[:13], 16)


def _err(status: int, reason: str, message: str) -> tuple[int, dict[str, str], bytes]:
    body = {"error": {"code": status, "message": message, "errors": [{"reason": reason, "message": message}]}}
    return status, _JSON, json.dumps(body).encode()


class GCSSimulator(s3sim.Simulator):
    """``async with GCSSimulator(objects=..., denied=("b",), composite_every=0) as sim``."""

    def __init__(self, config: s3sim.SimConfig | None = None, **kw: Any) -> None:
        self.denied = frozenset(kw.pop("denied", ()))
        self.composite_every = int(kw.pop("composite_every", 0))
        super().__init__(config, **kw)

    def composite(self, i: int) -> bool:
        k = self.composite_every
        return k > 0 and i % k == k - 1

    def _resource(self, sp: s3sim.KeySpace, bucket: str, i: int, key: str, etag: str, size: int) -> dict[str, Any]:
        r: dict[str, Any] = {
            "name": key,
            "size": str(size),
            "crc32c": "AAAAAA==",
            "generation": str(generation_of(key)),
        }
        if not self.composite(i):
            r["md5Hash"] = base64.b64encode(bytes.fromhex(etag)).decode()
        return r

    def _handle(self, method: str, target: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        path, _, query = target.partition("?")
        q = dict(parse_qsl(query, keep_blank_values=True))
        media = q.get("alt") == "media"
        if path.startswith("/download/"):
            path, media = path[len("/download") :], True
        parts = path.split("/", 6)  # "", storage, v1, b, {bucket}, o, {key}
        if len(parts) < 6 or parts[1:4] != ["storage", "v1", "b"] or parts[5] != "o":
            return _err(404, "notFound", f"no such API path {path}")
        if method != "GET":
            return _err(501, "notImplemented", f"{method} is not simulated")
        bucket = unquote(parts[4])
        if bucket in self.denied:
            return _err(403, "forbidden", f"caller does not have storage.objects.list access to bucket {bucket}")
        sp = self.spaces.get(bucket, self.space)
        if len(parts) == 7:
            return self._get(sp, bucket, unquote(parts[6]), q, media)
        return self._list(sp, bucket, q)

    def _get(
        self, sp: s3sim.KeySpace, bucket: str, key: str, q: dict[str, str], media: bool
    ) -> tuple[int, dict[str, str], bytes]:
        i = sp.index_of(key)
        if i is None or (q.get("generation") not in (None, str(generation_of(key)))):
            return _err(404, "notFound", f"No such object: {bucket}/{key}")
        if media:
            hdrs = {"Content-Type": "application/octet-stream", "X-Goog-Generation": str(generation_of(key))}
            return 200, hdrs, sp.body(i)
        return 200, _JSON, json.dumps(self._resource(sp, bucket, i, key, sp.etag(i, key), sp.size(i))).encode()

    def _list(self, sp: s3sim.KeySpace, bucket: str, q: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        self.stats.list_pages += 1
        prefix = q.get("prefix", "")
        try:
            max_results = max(1, min(1000, int(q.get("maxResults", "1000"))))
        except ValueError:
            return _err(400, "invalid", "maxResults is not a number")
        start = sp.first_ge(max(prefix, q.get("startOffset", ""), q.get("pageToken", "")))
        end = sp.prefix_end(prefix, start)
        stop = min(end, start + max_results)
        idx = list(range(start, stop))
        keys = [sp.key(i) for i in idx]
        items = []
        for i, k, (etag, size) in zip(idx, keys, sp.etags_sizes(idx, keys)):
            items.append(self._resource(sp, bucket, i, k, etag, size))
        if q.get("fields") != TRIMMED_FIELDS:
            for r in items:
                r.update(kind="storage#object", bucket=bucket, id=f"{bucket}/{r['name']}/{r['generation']}")
        doc: dict[str, Any] = {"kind": "storage#objects"} if q.get("fields") != TRIMMED_FIELDS else {}
        if items:
            doc["items"] = items
        if stop < end:
            doc["nextPageToken"] = sp.key(stop)
        return 200, _JSON, json.dumps(doc, separators=(",", ":")).encode()


def start_gcs_simulator(**kw: Any) -> s3sim.SimulatorThread:
    """A GCS simulator in a background thread; use as a context manager or call ``stop()``."""
    denied, composite = kw.pop("denied", ()), kw.pop("composite_every", 0)
    thread = s3sim.SimulatorThread(s3sim.SimConfig(**kw))
    thread.sim = GCSSimulator(thread.config, denied=denied, composite_every=composite)
    return thread.start()


# -- the benchmark -----------------------------------------------------------------------


def _serve(cfg: dict[str, Any], gcs: bool) -> None:
    async def run() -> None:
        sim_cls = GCSSimulator if gcs else s3sim.Simulator
        sim = await sim_cls(**cfg).start()
        print(sim.endpoint_url, flush=True)
        await asyncio.Event().wait()

    asyncio.run(run())


async def _list_child(scheme: str, endpoint: str, uri: str, objects: int, concurrency: int) -> dict[str, Any]:
    import tempfile

    from depot.native import GCSPAGE_COMPILED, MANIFEST_COMPILED, S3PAGE_COMPILED, ManifestWriter

    with tempfile.TemporaryFile() as f:
        writer = ManifestWriter(f, "md5")
        t0 = time.perf_counter()
        if scheme == "gs":
            from depot.services.manifest.gcs_listing import GCSConfig, write_gcs_reference

            stats = await write_gcs_reference(
                uri, writer, config=GCSConfig(endpoint_url=endpoint), concurrency=concurrency, max_objects=objects
            )
            native = GCSPAGE_COMPILED and MANIFEST_COMPILED
        else:
            from depot.services.manifest.s3_listing import S3Config, write_s3_reference

            cfg = S3Config(endpoint_url=endpoint, region="us-east-1", aws_access_key_id="b", aws_secret_access_key="b")
            stats = await write_s3_reference(
                uri, writer, session_config=cfg, concurrency=concurrency, max_objects=objects
            )
            native = S3PAGE_COMPILED and MANIFEST_COMPILED
        summary = writer.close()
        wall = time.perf_counter() - t0
    return {
        "scheme": scheme,
        "objects": summary.count,
        "wall_s": round(wall, 3),
        "objects_per_s": round(summary.count / wall),
        "requests": stats.requests,
        "units": stats.units,
        "digest": summary.digest,
        "native": bool(native),
    }


def _start(cfg: dict[str, Any], gcs: bool) -> tuple[subprocess.Popen[str], str]:
    code = f"import sys; sys.path.insert(0, {str(HERE)!r}); import gcssim; gcssim._serve({cfg!r}, {gcs!r})"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def bench(a: argparse.Namespace) -> None:
    cfg = {"objects": a.objects, "layout": a.layout, "latency_ms": a.latency_ms}
    root = "dataset" if a.layout == "nested" else "flat"
    rows: dict[str, list[dict[str, Any]]] = {"s3": [], "gs": []}
    sims = {"s3": _start(cfg, False), "gs": _start(cfg, True)}
    try:
        for k in range(a.repeat):
            for scheme in ("s3", "gs"):
                endpoint = sims[scheme][1]
                code = (
                    f"import asyncio, json, sys; sys.path.insert(0, {str(HERE)!r}); import gcssim; "
                    f"print(json.dumps(asyncio.run(gcssim._list_child({scheme!r}, {endpoint!r}, "
                    f"'{scheme}://bench/{root}', {a.objects}, {a.concurrency}))))"
                )
                out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
                row = {"run": k, **json.loads(out.stdout)}
                rows[scheme].append(row)
                print(json.dumps(row), flush=True)
    finally:
        for proc, _ in sims.values():
            proc.kill()
            proc.wait()
    for scheme, rs in rows.items():
        med = statistics.median(r["objects_per_s"] for r in rs)
        print(json.dumps({"run": "median", "scheme": scheme, "objects": rs[0]["objects"], "objects_per_s": med}))
    # The digests differ between schemes by design (hex ETag vs base64 md5Hash); each must be stable.
    print(
        json.dumps(
            {"run": "check", **{f"{k}_digest_stable": len({r["digest"] for r in rs}) == 1 for k, rs in rows.items()}}
        )
    )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--objects", type=int, default=1000)
    ap.add_argument("--layout", choices=["nested", "flat"], default="nested")
    ap.add_argument("--latency-ms", type=float, default=0.0)
    ap.add_argument("--composite-every", type=int, default=0)
    ap.add_argument("--deny", action="append", default=[], metavar="BUCKET")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--bench", action="store_true", help="run the gs:// vs s3:// listing benchmark")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=32)
    a = ap.parse_args(argv)
    if a.bench:
        bench(a)
        return
    cfg = dataclasses.asdict(s3sim.SimConfig(objects=a.objects, layout=a.layout, latency_ms=a.latency_ms, port=a.port))

    async def run() -> None:
        sim = await GCSSimulator(s3sim.SimConfig(**cfg), denied=a.deny, composite_every=a.composite_every).start()
        print(sim.endpoint_url, flush=True)
        await asyncio.Event().wait()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    os.environ.pop("STORAGE_EMULATOR_HOST", None)
    main(sys.argv[1:])
