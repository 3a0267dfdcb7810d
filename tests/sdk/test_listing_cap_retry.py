"""The SDK waits its turn when the entity already runs its cap of reference listings.

The manifest service refuses a listing past ``OperationSettings.max_per_entity``
running ones of the same entity (RESOURCE_EXHAUSTED); a pipeline of many
workers in one team must wait, not fail. Here the cap is 1 and two listings
of the same entity overlap: the second is refused at first, then listed.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import s3sim  # bench/s3sim.py (bench/ is on pythonpath)
from support.entities import create_team
from support.servers import ServerThread, make_config

from depot._client import Client
from depot._resolve import resolve_references
from depot.common.v1 import common_pb2
from depot.manifest.v1 import manifest_pb2 as mpb
from depot.services.manifest.config import ManifestSettings
from depot.services.manifest.operations import OperationSettings

OBJECTS = 50_000


@pytest.fixture
def sim() -> Iterator[s3sim.SimulatorThread]:
    # ~50 serialized requests at 80 ms: the first listing lasts about 4 s.
    with s3sim.start_simulator(objects=OBJECTS, layout="flat", latency_ms=80.0, concurrency_cap=1) as sim:
        yield sim
        deadline = time.monotonic() + 60
        while sim.stats.in_flight and time.monotonic() < deadline:
            time.sleep(0.1)


@pytest.fixture
def server(
    tmp_path: Path, database_url: str, sim: s3sim.SimulatorThread, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ServerThread]:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(var, "sim")
    configured = ManifestSettings.operation_settings

    def one_listing_per_entity(self: ManifestSettings) -> OperationSettings:
        return dataclasses.replace(configured(self), max_per_entity=1)

    monkeypatch.setattr(ManifestSettings, "operation_settings", one_listing_per_entity)
    cfg = make_config(
        tmp_path / "depot-data",
        database_url,
        (tmp_path / "blobs").as_uri(),
        DEPOT_REFERENCE_S3_ENDPOINT_URL=sim.endpoint_url,
        DEPOT_REFERENCE_BUCKETS="bk",
    )
    srv = ServerThread(cfg).start()
    create_team(srv.address, srv.admin_key, "team")
    yield srv
    srv.stop()


def test_a_listing_refused_for_the_entity_cap_waits_its_turn(server: ServerThread) -> None:
    client = Client(server.address, api_key=server.admin_key)
    running = threading.Event()
    first: list[common_pb2.ManifestRef] = []

    def list_first() -> None:
        refs = [mpb.Reference(uri="s3://bk/flat/")]
        first.append(resolve_references(client, "team", "md5", refs, lambda n, b: running.set()))

    try:
        thread = threading.Thread(target=list_first)
        thread.start()
        assert running.wait(60)  # the first listing holds the entity's only slot
        second = resolve_references(client, "team", "md5", [mpb.Reference(uri="s3://bk/flat/")])
        thread.join(120)
    finally:
        client.close()
    assert len(first) == 1
    assert second.digest and first[0].digest
