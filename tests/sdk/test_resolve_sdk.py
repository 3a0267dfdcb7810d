"""The SDK follows a server-side reference listing past its call deadline, with progress.

The listing takes a few seconds (simulator latency, one request at a time)
while the client's unary deadline is 2 s: before ResolveReferences the
reference was listed inside one PutManifest call and failed with
DEADLINE_EXCEEDED whenever the listing outlasted the deadline.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import s3sim  # bench/s3sim.py (bench/ is on pythonpath)
from support.entities import create_team
from support.servers import ServerThread, make_config

import depot
from depot._client import Client
from depot._resolve import resolve_references
from depot.manifest.v1 import manifest_pb2 as mpb

OBJECTS = 50_000
CALL_TIMEOUT_S = 2.0


@pytest.fixture
def sim() -> Iterator[s3sim.SimulatorThread]:
    # ~60 serialized requests at 80 ms: about 5 s, past the 2 s call deadline.
    with s3sim.start_simulator(objects=OBJECTS, layout="flat", latency_ms=80.0, concurrency_cap=1) as sim:
        yield sim
        # Requests of a cancelled listing still queue at the simulator; stopping
        # it under them leaves its connection tasks to be destroyed pending.
        deadline = time.monotonic() + 60
        while sim.stats.in_flight and time.monotonic() < deadline:
            time.sleep(0.1)


@pytest.fixture
def server(
    tmp_path: Path, database_url: str, sim: s3sim.SimulatorThread, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ServerThread]:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(var, "sim")
    cfg = make_config(
        tmp_path / "depot-data",
        database_url,
        (tmp_path / "blobs").as_uri(),
        DEPOT_REFERENCE_S3_ENDPOINT_URL=sim.endpoint_url,
        DEPOT_REFERENCE_BUCKETS="bk",
    )
    srv = ServerThread(cfg).start()
    create_team(srv.address, srv.admin_key, "team")
    monkeypatch.setenv("DEPOT_CALL_TIMEOUT", str(CALL_TIMEOUT_S))
    yield srv
    srv.stop()


def test_a_listing_longer_than_the_call_deadline_completes(server: ServerThread, tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("hello")
    with depot.init(entity="team", project="p", address=server.address, api_key=server.admin_key) as run:
        art = depot.Artifact("refs", type="dataset")
        art.add_reference("s3://bk/flat/", name="data")
        art.add_file(str(tmp_path / "readme.txt"))
        logged = run.log_artifact(art).wait()
        only = depot.Artifact("only-refs", type="dataset")
        only.add_reference("s3://bk/flat/")
        alone = run.log_artifact(only).wait()
    assert logged._version.file_count == OBJECTS + 1  # listed and streamed entries, merged
    assert alone._version.file_count == OBJECTS


def test_progress_reaches_the_caller(server: ServerThread) -> None:
    seen: list[tuple[int, int]] = []
    client = Client(server.address, api_key=server.admin_key)
    try:
        ref = resolve_references(
            client, "team", "md5", [mpb.Reference(uri="s3://bk/flat/")], lambda n, b: seen.append((n, b))
        )
    finally:
        client.close()
    assert ref.file_count == OBJECTS
    assert seen and seen == sorted(seen) and seen[-1][0] <= OBJECTS


def test_an_empty_prefix_is_an_error_unless_allowed(server: ServerThread) -> None:
    with depot.init(entity="team", project="p", address=server.address, api_key=server.admin_key) as run:
        typo = depot.Artifact("typo", type="dataset")
        typo.add_reference("s3://bk/flta/")
        with pytest.raises(depot.FailedPreconditionError, match=r"no objects under s3://bk/flta/; check the prefix"):
            run.log_artifact(typo).wait()
        empty = depot.Artifact("empty", type="dataset")
        empty.add_reference("s3://bk/flta/", allow_empty=True)
        assert run.log_artifact(empty).wait()._version.file_count == 0
        with pytest.raises(depot.InvalidArgumentError, match="allow_empty"):
            depot.Artifact("x", type="dataset").add_reference("s3://bk/a/", allow_empty="yes")  # type: ignore[arg-type]
