"""iter_entries resumes a broken ReadManifest stream after the last path it delivered.

A gRPC proxy on loopback sits in front of a real server's ReadManifest: it
forwards one stored block per message and cuts the stream (UNAVAILABLE, as
a dropped connection reads) after a given number of them, so the SDK's
second request shows where it resumed.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import threading
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from support.servers import ServerThread

from depot._client import Client
from depot._exceptions import CommError, DepotError
from depot._manifest_read import iter_entries
from depot.manifest.v1 import manifest_pb2 as mpb
from depot.manifest.v1 import manifest_pb2_grpc
from depot.native import ManifestEntry, ManifestWriter

ENTITY = "team"


class CuttingProxy(manifest_pb2_grpc.ManifestServiceServicer):
    def __init__(self, upstream: str, cut_after: int, cuts: int, code: grpc.StatusCode) -> None:
        self._channel = grpc.insecure_channel(upstream)
        self._stub = manifest_pb2_grpc.ManifestServiceStub(self._channel)
        self.cut_after = cut_after
        self.cuts = cuts
        self.code = code
        self.requests: list[mpb.ReadManifestRequest] = []
        self._lock = threading.Lock()

    def ReadManifest(self, request: mpb.ReadManifestRequest, context: grpc.ServicerContext) -> Iterator[mpb.EntryBatch]:
        with self._lock:
            self.requests.append(request)
            cut = self.cuts > 0
            self.cuts -= 1
        auth = [(k, v) for k, v in context.invocation_metadata() if k == "authorization"]
        sent = 0
        for msg in self._stub.ReadManifest(request, metadata=auth):
            for raw in msg.blocks:
                yield mpb.EntryBatch(blocks=[raw])
                sent += 1
                if cut and sent == self.cut_after:
                    context.abort(self.code, "connection cut by the test proxy")

    def close(self) -> None:
        self._channel.close()


@pytest.fixture
def stored(server: ServerThread) -> tuple[str, list[ManifestEntry]]:
    entries = [ManifestEntry(f"d{i % 3}/{i:05d}", "etag", f"{i:032x}", i, f"s3://b/{i}") for i in range(1000)]
    entries.sort(key=lambda e: e.path)
    out = io.BytesIO()
    w = ManifestWriter(out, "md5", block_entries=50)
    w.add_many(entries)
    w.close()
    manifest_id = hashlib.sha256(out.getvalue()).hexdigest()
    path = Path(server.config.manifest.storage_url.removeprefix("file://")) / ENTITY / "manifests" / manifest_id[:2]
    path.mkdir(parents=True, exist_ok=True)
    (path / manifest_id).write_bytes(out.getvalue())
    return manifest_id, entries


@contextlib.contextmanager
def _proxied(server: ServerThread, proxy: CuttingProxy, **client_kw: object) -> Iterator[Client]:
    grpc_server = grpc.server(futures.ThreadPoolExecutor(4))
    manifest_pb2_grpc.add_ManifestServiceServicer_to_server(proxy, grpc_server)
    port = grpc_server.add_insecure_port("127.0.0.1:0")
    grpc_server.start()
    client = Client(server.address, server.admin_key, manifest_address=f"127.0.0.1:{port}", **client_kw)  # type: ignore[arg-type]
    try:
        yield client
    finally:
        client.close()
        grpc_server.stop(None)
        proxy.close()


@pytest.mark.parametrize("prefix", ["", "d1"])
def test_a_cut_stream_resumes_after_the_last_delivered_path(
    server: ServerThread, stored: tuple[str, list[ManifestEntry]], prefix: str
) -> None:
    manifest_id, entries = stored
    proxy = CuttingProxy(server.address, cut_after=3, cuts=2, code=grpc.StatusCode.UNAVAILABLE)
    with _proxied(server, proxy) as client:
        got = [e for b in iter_entries(client, ENTITY, manifest_id, prefix=prefix) for e in b]
    want = [e for e in entries if not prefix or e.path.startswith(prefix + "/")]
    assert got == want  # all of them, once each, in order
    assert len(proxy.requests) == 3
    first, second, third = proxy.requests
    assert first.start_after == "" and first.raw_blocks
    assert second.start_after and second.start_after < third.start_after
    assert all(r.prefix == prefix for r in proxy.requests)
    # Each resumed where the delivered entries ended, not from the start.
    assert second.start_after in {e.path for e in want}


def test_a_cut_that_is_not_transient_is_raised(server: ServerThread, stored: tuple[str, list[ManifestEntry]]) -> None:
    manifest_id, _ = stored
    proxy = CuttingProxy(server.address, cut_after=2, cuts=1, code=grpc.StatusCode.INTERNAL)
    with _proxied(server, proxy) as client:
        with pytest.raises(DepotError, match="cut by the test proxy"):
            for _ in iter_entries(client, ENTITY, manifest_id):
                pass
    assert len(proxy.requests) == 1


def test_no_resume_when_retries_are_off(server: ServerThread, stored: tuple[str, list[ManifestEntry]]) -> None:
    manifest_id, _ = stored
    proxy = CuttingProxy(server.address, cut_after=2, cuts=1, code=grpc.StatusCode.UNAVAILABLE)
    with _proxied(server, proxy, retries=0) as client:
        with pytest.raises(CommError):
            for _ in iter_entries(client, ENTITY, manifest_id):
                pass
    assert len(proxy.requests) == 1
