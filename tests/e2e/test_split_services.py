"""The services as separate servers (as deployed), and grpc.health.v1 on each."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from support.entities import create_team

import depot
from depot.services.common import serving
from depot.services.gc.server import Gc
from depot.services.manifest.server import GATES, add_manifest
from depot.services.manifest.store import open_store
from depot.services.metadata import db
from depot.services.metadata.access import Access
from depot.services.metadata.server import Metadata

SECRET = b"test-internal-secret"


class Split:
    """metadata, manifest and gc on three ports; manifest asks metadata over gRPC."""

    def __init__(self, dsn: str, blobs: Path):
        self.dsn, self.blobs = dsn, blobs
        self.ports: dict[str, int] = {}
        self.admin_key = ""
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(self._main(),))

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        pool = await db.create_pool(self.dsn)
        self.admin_key = str(await Access(db.Database(pool)).bootstrap_admin())
        store = await open_store(self.blobs.as_uri())
        metadata = Metadata(pool, SECRET)
        collector = Gc(pool)
        meta, man, gc = (
            serving.new_server(metadata.callers()),
            serving.new_server(GATES),
            serving.new_server(collector.callers()),
        )
        self.ports["metadata"] = serving.bind(meta, "127.0.0.1:0")
        self.ports["manifest"] = serving.bind(man, "127.0.0.1:0")
        self.ports["gc"] = serving.bind(gc, "127.0.0.1:0")
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{self.ports['metadata']}")
        await serving.start(meta, metadata.add_to(meta))
        await serving.start(man, [add_manifest(man, store, channel, SECRET)])
        await serving.start(gc, [collector.add_to(gc)])
        self._ready.set()
        await self._stop.wait()
        for s in (meta, man, gc):
            await s.stop(1)
        await channel.close()
        await store.aclose()
        await pool.close()

    def __enter__(self) -> Split:
        self._thread.start()
        assert self._ready.wait(30)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)
        self._loop.close()


@pytest.fixture
def split(database_url: str, tmp_path: Path) -> Iterator[Split]:
    with Split(database_url, tmp_path / "blobs") as s:
        yield s


def test_each_service_answers_health(split: Split) -> None:
    expected = {
        "metadata": [
            "depot.metadata.v1.ArtifactService",
            "depot.metadata.v1.RegistryService",
            "depot.metadata.v1.AccessService",
            "depot.metadata.v1.LineageService",
        ],
        "manifest": ["depot.manifest.v1.ManifestService"],
        "gc": ["depot.gc.v1.GcService"],
    }
    for svc, port in split.ports.items():
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            stub = health_pb2_grpc.HealthStub(ch)
            for name in ("", *expected[svc]):
                resp = stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
                assert resp.status == health_pb2.HealthCheckResponse.SERVING


def test_sdk_against_separate_services(split: Split, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEPOT_MANIFEST_ADDRESS", f"127.0.0.1:{split.ports['manifest']}")
    address = f"127.0.0.1:{split.ports['metadata']}"
    create_team(address, split.admin_key, "team")
    with depot.init(entity="team", project="p", address=address, api_key=split.admin_key) as run:
        art = depot.Artifact("split", type="dataset")
        with art.new_file("x.txt") as f:
            f.write("over three services")
        run.log_artifact(art).wait()
    out = art.download(tmp_path / "out")
    assert (out / "x.txt").read_text() == "over three services"
