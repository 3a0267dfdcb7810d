"""The edge fails closed: no call without a valid key reaches a handler.

Every RPC of every service in the protos (enumerated from the generated
descriptors, so a new RPC or service is covered without being listed here)
is called with no key and with bad keys:

- on servers whose handlers are tripwires, under the gates the services
  really use: the answer is UNAUTHENTICATED and no handler ran. A service
  the gates do not name is refused the same way, never served;
- on the real servers, split as deployed (metadata, manifest, gc) and
  all-in-one: every answer is UNAUTHENTICATED.

grpc.health.v1 alone answers without a key (probes carry none).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.descriptor import MethodDescriptor
from grpc_health.v1 import health_pb2, health_pb2_grpc
from support.servers import ServerThread

from depot.gc.v1 import gc_pb2
from depot.manifest.v1 import manifest_pb2
from depot.metadata.v1 import metadata_pb2
from depot.services.common import serving
from depot.services.common.interceptor import Gate
from depot.services.gc.server import Gc
from depot.services.manifest.server import GATES as MANIFEST_GATES
from depot.services.manifest.server import add_manifest
from depot.services.manifest.store import open_store
from depot.services.metadata import db
from depot.services.metadata.server import Metadata

SECRET = b"test-internal-secret"
SERVICES = [s for f in (metadata_pb2, manifest_pb2, gc_pb2) for s in f.DESCRIPTOR.services_by_name.values()]
METHODS = [(s.full_name, m) for s in SERVICES for m in s.methods]
MANIFEST = manifest_pb2.DESCRIPTOR.services_by_name["ManifestService"].full_name
# Well-formed (dpt_<id>_<secret>) but issued to nobody: only a lookup refuses it.
UNKNOWN_KEY = "dpt_0123456789ab_" + "x" * 32
NO_KEY: tuple[tuple[str, str], ...] = ()
MALFORMED = (("authorization", "Bearer not-a-depot-key"),)
UNKNOWN = (("authorization", f"Bearer {UNKNOWN_KEY}"),)
NOT_BEARER = (("authorization", f"Basic {UNKNOWN_KEY}"),)
BAD_CREDENTIALS = {"no key": NO_KEY, "malformed key": MALFORMED, "not bearer": NOT_BEARER}


def test_every_service_is_enumerated() -> None:
    # The four metadata families, the manifest and the gc service: a proto
    # file added later must be added to SERVICES above.
    assert len(SERVICES) == 6 and len(METHODS) >= 40


async def _call(channel: grpc.aio.Channel, service: str, method: MethodDescriptor, md: Any) -> grpc.StatusCode:
    """Calls ``method`` with an empty request (raw bytes, as any client could send); its status code."""
    path = f"/{service}/{method.name}"
    try:
        if method.client_streaming and method.server_streaming:
            async for _ in channel.stream_stream(path)(iter([b""]), metadata=md, timeout=10):
                pass
        elif method.client_streaming:
            await channel.stream_unary(path)(iter([b""]), metadata=md, timeout=10)
        elif method.server_streaming:
            async for _ in channel.unary_stream(path)(b"", metadata=md, timeout=10):
                pass
        else:
            await channel.unary_unary(path)(b"", metadata=md, timeout=10)
    except grpc.aio.AioRpcError as e:
        return e.code()
    return grpc.StatusCode.OK


async def _codes(address: str, methods: list[tuple[str, MethodDescriptor]], md: Any) -> dict[str, grpc.StatusCode]:
    async with grpc.aio.insecure_channel(address) as channel:
        return {f"{s}/{m.name}": await _call(channel, s, m, md) for s, m in methods}


async def _health_is_open(address: str) -> None:
    async with grpc.aio.insecure_channel(address) as channel:
        answer = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    assert answer.status == health_pb2.HealthCheckResponse.SERVING


# -- tripwires: the edge decides before any handler ------------------------------------

UNLISTED = "depot.contract.v1.UnlistedService"


@dataclass
class _Method:
    """Stands in for a method of a real service in METHODS (only what _call reads)."""

    name: str
    client_streaming: bool = False
    server_streaming: bool = False


def _tripwires(service: str, methods: list[Any], hits: list[str]) -> grpc.GenericRpcHandler:
    """A handler for each of ``methods`` that records being reached."""

    def handler(method: Any) -> grpc.RpcMethodHandler[Any, Any]:
        path = f"{service}/{method.name}"

        async def unary(request: Any, context: Any) -> bytes:
            hits.append(path)
            return b""

        async def streaming(request: Any, context: Any) -> AsyncIterator[bytes]:
            hits.append(path)
            yield b""

        if method.client_streaming and method.server_streaming:
            return grpc.stream_stream_rpc_method_handler(streaming)
        if method.client_streaming:
            return grpc.stream_unary_rpc_method_handler(unary)
        if method.server_streaming:
            return grpc.unary_stream_rpc_method_handler(streaming)
        return grpc.unary_unary_rpc_method_handler(unary)

    return grpc.method_handlers_generic_handler(service, {m.name: handler(m) for m in methods})


async def _serve_tripwires(gates: Mapping[str, Gate], hits: list[str]) -> tuple[grpc.aio.Server, str]:
    server = serving.new_server(gates)
    for service in SERVICES:
        server.add_generic_rpc_handlers((_tripwires(service.full_name, list(service.methods), hits),))
    # A service registered on the server but named by no gate: how a service
    # added later without thinking of authentication would be served.
    server.add_generic_rpc_handlers((_tripwires(UNLISTED, [_Method("Get")], hits),))
    port = serving.bind(server, "127.0.0.1:0")
    await serving.start(server, [s.full_name for s in SERVICES])
    return server, f"127.0.0.1:{port}"


@pytest.fixture
async def tripwires(database_url: str) -> AsyncIterator[tuple[str, list[str]]]:
    """A server with tripwire handlers behind the gates metadata, manifest and gc really use."""
    pool = await db.create_pool(database_url, min_size=1, max_size=2)
    hits: list[str] = []
    gates: dict[str, Gate] = {**Metadata(pool, SECRET).callers(), **MANIFEST_GATES, **Gc(pool).callers()}
    server, address = await _serve_tripwires(gates, hits)
    try:
        yield address, hits
    finally:
        await server.stop(0)
        await pool.close()


@pytest.mark.parametrize("md", BAD_CREDENTIALS.values(), ids=BAD_CREDENTIALS.keys())
async def test_no_handler_runs_without_a_valid_key(tripwires: tuple[str, list[str]], md: Any) -> None:
    address, hits = tripwires
    codes = await _codes(address, [*METHODS, (UNLISTED, _Method("Get"))], md)
    assert {k: v for k, v in codes.items() if v != grpc.StatusCode.UNAUTHENTICATED} == {}
    assert hits == []
    await _health_is_open(address)


async def test_an_unknown_key_reaches_only_the_services_that_ask_metadata_themselves(
    tripwires: tuple[str, list[str]],
) -> None:
    """A well-formed key is looked up at the edge for every service but the
    manifest's, whose handlers send it to metadata's CheckAccess with the
    request's entity (test_real_servers_refuse_... checks that answer)."""
    address, hits = tripwires
    codes = await _codes(address, [*METHODS, (UNLISTED, _Method("Get"))], UNKNOWN)
    refused = {k for k, v in codes.items() if v == grpc.StatusCode.UNAUTHENTICATED}
    assert refused == {f"{s}/{m.name}" for s, m in METHODS if s != MANIFEST} | {f"{UNLISTED}/Get"}
    assert set(hits) == {f"{s}/{m.name}" for s, m in METHODS if s == MANIFEST}


async def test_an_unlisted_service_is_refused_even_with_a_valid_key(
    tripwires: tuple[str, list[str]], server: ServerThread
) -> None:
    # The all-in-one's admin key is valid on this database too: the same one.
    address, hits = tripwires
    key = (("authorization", f"Bearer {server.admin_key}"),)
    codes = await _codes(address, [(UNLISTED, _Method("Get"))], key)
    assert codes == {f"{UNLISTED}/Get": grpc.StatusCode.UNAUTHENTICATED}
    assert hits == []
    # ...while a listed service lets the same key through to its handler.
    gc = gc_pb2.DESCRIPTOR.services_by_name["GcService"]
    assert await _codes(address, [(gc.full_name, gc.methods[0])], key) == {
        f"{gc.full_name}/{gc.methods[0].name}": grpc.StatusCode.OK
    }


# -- the real servers -------------------------------------------------------------------


@dataclass
class _Split:
    metadata: str
    manifest: str
    gc: str


@pytest.fixture
async def split(database_url: str, tmp_path: Path) -> AsyncIterator[_Split]:
    """metadata, manifest and gc as deployed: three servers, manifest asking metadata over gRPC."""
    pool = await db.create_pool(database_url, min_size=1, max_size=4)
    store = await open_store((tmp_path / "blobs").as_uri())
    metadata, gc = Metadata(pool, SECRET), Gc(pool)
    servers = {
        "metadata": serving.new_server(metadata.callers()),
        "manifest": serving.new_server(MANIFEST_GATES),
        "gc": serving.new_server(gc.callers()),
    }
    ports = {name: serving.bind(s, "127.0.0.1:0") for name, s in servers.items()}
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{ports['metadata']}")
    await serving.start(servers["metadata"], metadata.add_to(servers["metadata"]))
    await serving.start(servers["manifest"], [add_manifest(servers["manifest"], store, channel, SECRET)])
    await serving.start(servers["gc"], [gc.add_to(servers["gc"])])
    try:
        yield _Split(**{name: f"127.0.0.1:{port}" for name, port in ports.items()})
    finally:
        for s in servers.values():
            await s.stop(0)
        await channel.close()
        await store.aclose()
        await pool.close()


def _of(*files: Any) -> list[tuple[str, MethodDescriptor]]:
    names = {s.full_name for f in files for s in f.DESCRIPTOR.services_by_name.values()}
    return [(s, m) for s, m in METHODS if s in names]


CREDENTIALS = {**BAD_CREDENTIALS, "unknown key": UNKNOWN}


@pytest.mark.parametrize("md", CREDENTIALS.values(), ids=CREDENTIALS.keys())
async def test_real_servers_refuse_every_rpc_without_a_valid_key(split: _Split, server: ServerThread, md: Any) -> None:
    # A well-formed key reaches the manifest's handlers, which check the
    # request's entity before asking metadata (the next test).
    asks_metadata = md is UNKNOWN
    targets: list[tuple[str, list[tuple[str, MethodDescriptor]]]] = [
        (split.metadata, _of(metadata_pb2)),
        (split.gc, _of(gc_pb2)),
        (server.address, [(s, m) for s, m in METHODS if not (asks_metadata and s == MANIFEST)]),
    ]
    if not asks_metadata:
        targets.append((split.manifest, _of(manifest_pb2)))
    for address, methods in targets:
        codes = await _codes(address, methods, md)
        assert {k: v for k, v in codes.items() if v != grpc.StatusCode.UNAUTHENTICATED} == {}, address
        await _health_is_open(address)


async def test_the_manifest_service_refuses_an_unknown_key_through_metadata(split: _Split) -> None:
    """The manifest's handlers judge a well-formed key with metadata's CheckAccess."""
    request = manifest_pb2.FindMissingBlobsRequest(entity="team")
    async with grpc.aio.insecure_channel(split.manifest) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await channel.unary_unary(f"/{MANIFEST}/FindMissingBlobs")(
                request.SerializeToString(), metadata=UNKNOWN, timeout=10
            )
    assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
