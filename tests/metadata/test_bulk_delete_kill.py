"""A bulk delete whose metadata server is SIGKILLed mid-way loses nothing.

Two `python -m depot.services.metadata serve` processes on one database, one
after the other: the first is killed while its runner works through the
batches; the second, asked again with the same request_id, takes the
operation over once the dead runner's lease expired and finishes it. The
counters stay the truth throughout (each batch commits with them).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import grpc
import pytest
from support.servers import free_port, wait_healthy

from depot.metadata.v1 import metadata_pb2 as pb
from depot.metadata.v1 import metadata_pb2_grpc
from depot.services.metadata.bulk_delete import BATCH, LEASE

N = 20 * BATCH
PROJECT = "entities/team-k/projects/p"


async def _seed(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        eid = await conn.fetchval("INSERT INTO entities (name, kind) VALUES ('team-k', 'team') RETURNING id")
        pid = await conn.fetchval("INSERT INTO projects (entity_id, name) VALUES ($1, 'p') RETURNING id", eid)
        cid = await conn.fetchval(
            "INSERT INTO collections (project_id, name, type, next_index)"
            " VALUES ($1, 'ds', 'dataset', $2) RETURNING id",
            pid,
            N,
        )
        await conn.execute(
            "INSERT INTO versions (uid, collection_id, index, state, commit_time)"
            " SELECT gen_random_uuid(), $1, i, 'committed', now() - interval '1 hour'"
            " FROM generate_series(0, $2 - 1) i",
            cid,
            N,
        )
    finally:
        await conn.close()


async def _counts(dsn: str) -> tuple[int, int]:
    """(versions deleted, the operation's deleted counter)."""
    conn = await asyncpg.connect(dsn)
    try:
        gone = await conn.fetchval("SELECT count(*) FROM versions WHERE state = 'deleted'")
        counted = await conn.fetchval("SELECT deleted FROM delete_operations")
        return int(gone), int(counted)
    finally:
        await conn.close()


class _Metadata:
    """One metadata server process."""

    def __init__(self, env: dict[str, str]):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "depot.services.metadata", "serve"],
            env={**env, "DEPOT_LISTEN": f"127.0.0.1:{self.port}"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_healthy(self.port, self.proc, time.monotonic() + 90)
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.port}")
        self.stub = metadata_pb2_grpc.ArtifactServiceStub(self.channel)

    def stop(self) -> None:
        self.channel.close()
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait(30)


@pytest.fixture
def env(database_url: str) -> Iterator[dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEPOT_")}
    env.update(DEPOT_DATABASE_URL=database_url, DEPOT_INTERNAL_SECRET="bulk-kill-test-secret")
    asyncio.run(_seed(database_url))
    yield env


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_a_killed_server_s_bulk_delete_is_finished_by_the_next(env: dict[str, str], tmp_path: Path) -> None:
    key = subprocess.run(
        [sys.executable, "-m", "depot.services.metadata", "bootstrap-admin"],
        env=env,
        check=True,
        timeout=60,
        capture_output=True,
        text=True,
    ).stdout.strip()
    md = (("authorization", f"Bearer {key}"),)
    req = pb.DeleteArtifactVersionsRequest(parent=PROJECT, request_id="kill-1")
    first = _Metadata(env)
    try:
        name = first.stub.DeleteArtifactVersions(req, metadata=md, timeout=30).name
        get = pb.GetDeleteOperationRequest(name=name)
        deadline = time.monotonic() + 90
        while (op := first.stub.GetDeleteOperation(get, metadata=md, timeout=30)).deleted < 2 * BATCH:
            assert time.monotonic() < deadline, op
            time.sleep(0.02)
        first.proc.kill()
        first.proc.wait(30)
    finally:
        first.stop()
    gone, counted = asyncio.run(_counts(env["DEPOT_DATABASE_URL"]))
    # Killed inside a batch or between two: what committed is exactly what was counted.
    assert gone == counted and 2 * BATCH <= gone < N, (gone, counted)

    second = _Metadata(env)
    try:
        again = second.stub.DeleteArtifactVersions(req, metadata=md, timeout=30)
        assert again.name == name and again.state == "running"
        deadline = time.monotonic() + LEASE.total_seconds() + 120
        get = pb.GetDeleteOperationRequest(name=name)
        while (op := second.stub.GetDeleteOperation(get, metadata=md, timeout=30)).state == "running":
            assert time.monotonic() < deadline, op
            time.sleep(0.2)
    finally:
        second.stop()
    assert (op.state, op.matched, op.deleted, op.skipped_aliased, op.skipped_linked) == ("done", N, N, 0, 0)
    assert asyncio.run(_counts(env["DEPOT_DATABASE_URL"])) == (N, N)
