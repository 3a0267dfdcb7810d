"""The SDK's retry policy against a real grpc server that fails on cue.

A time-based window (not a count) rides over an outage longer than gRPC's
reconnect backoff used to leave the old five retries; uploads are sent again
from a fresh request iterator and reads start over; what is not transient
(a deadline, an S3 fault the server already retried, bad input) reaches the
caller after one attempt. The end-to-end proof, a SIGKILLed `depot server`
under writers, is tests/e2e/test_server_kill.py.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

import depot
from depot._client import Client
from depot._download import fetch_entry
from depot._run import Run
from depot.manifest.v1 import manifest_pb2 as mpb
from depot.manifest.v1 import manifest_pb2_grpc
from depot.metadata.v1 import metadata_pb2 as pb
from depot.metadata.v1 import metadata_pb2_grpc
from depot.native import hash_bytes

BLOB = bytes(range(256)) * 4096  # 1 MiB: two 512 KiB chunks below


@dataclass
class Script:
    """What the fake services do: fail until ``until`` (monotonic), or ``failures`` times."""

    code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE
    reason: str = ""
    until: float = 0.0
    failures: int = 0
    attempts: int = 0
    request_ids: list[str] = field(default_factory=list)
    uploaded: list[bytes] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_now(self) -> bool:
        with self.lock:
            self.attempts += 1
            if time.monotonic() < self.until:
                return True
            if self.failures > 0:
                self.failures -= 1
                return True
            return False

    def abort(self, context: grpc.ServicerContext) -> None:
        if self.reason:
            info = error_details_pb2.ErrorInfo(reason=self.reason, domain="depot")
            status = status_pb2.Status(code=self.code.value[0], message="scripted")
            status.details.add().Pack(info)
            context.set_trailing_metadata((("grpc-status-details-bin", status.SerializeToString()),))
        context.abort(self.code, "scripted")


class Access(metadata_pb2_grpc.AccessServiceServicer):
    def __init__(self, script: Script):
        self.script = script

    def GetCaller(self, request: pb.GetCallerRequest, context: grpc.ServicerContext) -> pb.Caller:
        if self.script.fail_now():
            self.script.abort(context)
        return pb.Caller(user="alice")


class Artifacts(metadata_pb2_grpc.ArtifactServiceServicer):
    def __init__(self, script: Script):
        self.script = script

    def FinishRun(self, request: pb.FinishRunRequest, context: grpc.ServicerContext) -> pb.Run:
        self.script.request_ids.append(request.request_id)
        if self.script.fail_now():
            self.script.abort(context)
        return pb.Run(name=request.name, state=request.state)


class Manifest(manifest_pb2_grpc.ManifestServiceServicer):
    def __init__(self, script: Script):
        self.script = script

    def UploadBlob(self, request_iterator: Iterator[mpb.UploadBlobRequest], context: grpc.ServicerContext) -> mpb.Blob:
        header = next(request_iterator).header
        data = b""
        for msg in request_iterator:
            data += msg.chunk
            # Cut after the first chunk, as a server killed mid-upload would.
            if self.script.fail_now():
                self.script.abort(context)
        self.script.uploaded.append(data)
        return mpb.Blob(digest=header.digest, size=len(data), created=True)

    def ReadBlob(self, request: mpb.ReadBlobRequest, context: grpc.ServicerContext) -> Iterator[mpb.BlobChunk]:
        for i in range(0, len(BLOB), 1 << 19):
            if i and self.script.fail_now():
                self.script.abort(context)
            yield mpb.BlobChunk(data=BLOB[i : i + (1 << 19)])


@pytest.fixture
def script() -> Script:
    return Script()


@pytest.fixture
def address(script: Script) -> Iterator[str]:
    server = grpc.server(futures.ThreadPoolExecutor(8))
    metadata_pb2_grpc.add_AccessServiceServicer_to_server(Access(script), server)
    metadata_pb2_grpc.add_ArtifactServiceServicer_to_server(Artifacts(script), server)
    manifest_pb2_grpc.add_ManifestServiceServicer_to_server(Manifest(script), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(None)


def _client(address: str, **kwargs: Any) -> Client:
    return Client(address, "k", **kwargs)


def test_an_outage_longer_than_five_quick_retries_is_ridden_over(address: str, script: Script) -> None:
    # The old policy's five retries slept at most ~2.3 s in all.
    script.until = time.monotonic() + 3.0
    client = _client(address)
    caller = client.call(client.access.GetCaller, pb.GetCallerRequest())
    assert caller.user == "alice"
    assert script.attempts > 6


def test_the_window_bounds_an_outage_that_does_not_end(address: str, script: Script) -> None:
    script.until = time.monotonic() + 3600
    client = _client(address, retry_window=1.0)
    t0 = time.monotonic()
    with pytest.raises(depot.CommError) as exc:
        client.call(client.access.GetCaller, pb.GetCallerRequest())
    # The bound is the behaviour: the window, not the caller's 60 s deadline.
    assert 0.5 <= time.monotonic() - t0 < 10
    assert exc.value.message == "scripted"
    assert script.attempts > 2


def test_retries_zero_fails_at_the_first_transient_error(address: str, script: Script) -> None:
    script.failures = 1
    client = _client(address, retries=0)
    with pytest.raises(depot.CommError):
        client.call(client.access.GetCaller, pb.GetCallerRequest())
    assert script.attempts == 1


@pytest.mark.parametrize(
    "code,reason,error",
    [
        # The caller's or the server's statement timeout: the same work would run as long again.
        (grpc.StatusCode.DEADLINE_EXCEEDED, "", depot.CommError),
        # The server already retried S3 for its stall timeout.
        (grpc.StatusCode.UNAVAILABLE, "S3_UNAVAILABLE", depot.CommError),
        (grpc.StatusCode.INVALID_ARGUMENT, "", depot.InvalidArgumentError),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, "STORAGE_FULL", depot.ResourceExhaustedError),
        (grpc.StatusCode.INTERNAL, "", depot.DepotError),
    ],
)
def test_what_is_not_transient_is_not_retried(
    address: str, script: Script, code: grpc.StatusCode, reason: str, error: type[Exception]
) -> None:
    script.code, script.reason, script.failures = code, reason, 1
    client = _client(address)
    with pytest.raises(error):
        client.call(client.access.GetCaller, pb.GetCallerRequest())
    assert script.attempts == 1


def test_aborted_is_retried(address: str, script: Script) -> None:
    script.code, script.failures = grpc.StatusCode.ABORTED, 3
    client = _client(address)
    assert client.call(client.access.GetCaller, pb.GetCallerRequest()).user == "alice"
    assert script.attempts == 4


def test_a_retried_mutation_keeps_its_request_id(address: str, script: Script) -> None:
    script.failures = 2
    client = _client(address)
    Run(client, pb.Run(name="entities/e/projects/p/runs/r")).finish()
    assert len(script.request_ids) == 3
    assert script.request_ids[0] and len(set(script.request_ids)) == 1


def test_an_upload_cut_midway_is_sent_again_whole(address: str, script: Script) -> None:
    script.failures = 2
    client = _client(address)

    def requests() -> Iterator[mpb.UploadBlobRequest]:
        yield mpb.UploadBlobRequest(header=mpb.UploadBlobHeader(entity="e", size=len(BLOB)))
        for i in range(0, len(BLOB), 1 << 19):
            yield mpb.UploadBlobRequest(chunk=BLOB[i : i + (1 << 19)])

    blob = client.upload(client.manifest.UploadBlob, requests)
    assert blob.size == len(BLOB)
    assert script.uploaded == [BLOB]


def test_a_download_cut_midway_starts_over_and_verifies(address: str, script: Script, tmp_path: Path) -> None:
    script.failures = 2
    client = _client(address)
    (raw,) = hash_bytes(BLOB, ("xxh3_128",))
    entry = depot.ManifestEntry("data.bin", base64.b64encode(raw).decode(), "xxh3_128", len(BLOB))
    fetch_entry(client, "e", entry, tmp_path, False)
    assert (tmp_path / "data.bin").read_bytes() == BLOB
    assert script.attempts == 3


def test_a_bad_retry_window_setting_is_refused(monkeypatch: pytest.MonkeyPatch, address: str) -> None:
    monkeypatch.setenv("DEPOT_RETRY_WINDOW", "soon")
    with pytest.raises(depot.InvalidArgumentError, match="DEPOT_RETRY_WINDOW"):
        _client(address)
    monkeypatch.setenv("DEPOT_RETRY_WINDOW", "5")
    assert _client(address).retry_window == 5.0
    with pytest.raises(depot.InvalidArgumentError):
        _client(address, retry_window=-1)
