"""Staged files do not outlive a crash, nor a stalled client (issue 9, item 6).

Uploads and manifest builds were spooled in the system temp dir: a
SIGKILLed server left them there for good (47 ``upload-*`` files, 478 MB
after 24 kills), and a client that stopped sending mid-upload held its
file and a server task until its own deadline (the SDK's is 3,600 s). Now
they stage under the blob root's ``~staging``; what is older than the
grace period (DEPOT_STAGING_GRACE_S) is swept at start and periodically,
and a client stream idle for DEPOT_UPLOAD_IDLE_TIMEOUT_S is closed with
ABORTED (reason IDLE_TIMEOUT).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from support.entities import create_team
from support.servers import (
    ServerThread,
    free_port,
    make_config,
)
from support.stubs import Stubs, b64_xxh

from depot.manifest.v1 import manifest_pb2 as mpb
from depot.manifest.v1 import manifest_pb2_grpc
from depot.services.manifest.store import STAGING

HOUR = 3600.0
START_S = 60.0


def _age(path: Path, seconds: float) -> None:
    old = time.time() - seconds
    os.utime(path, (old, old))


def _leftovers(staging: Path) -> None:
    """What a crash leaves, an hour old and older, beside what is in flight."""
    staging.mkdir(parents=True, exist_ok=True)
    (staging / "upload-stale").write_bytes(b"x" * 1000)
    _age(staging / "upload-stale", 2 * HOUR)
    (staging / "tmpstale").write_bytes(b"x")  # a LocalBlobStore rename staging file
    _age(staging / "tmpstale", 2 * HOUR)
    stale_dir = staging / "manifest-stale"
    stale_dir.mkdir()
    (stale_dir / "streamed").write_bytes(b"x")
    _age(stale_dir / "streamed", 2 * HOUR)
    _age(stale_dir, 2 * HOUR)
    (staging / "upload-inflight").write_bytes(b"x")
    # A build whose directory is old but whose segment is still growing.
    live_dir = staging / "manifest-live"
    live_dir.mkdir()
    (live_dir / "ref0").write_bytes(b"x")
    _age(live_dir, 2 * HOUR)


KEPT = ["manifest-live", "upload-inflight"]


def test_stale_staged_files_are_swept_at_start_and_in_flight_ones_kept(tmp_path: Path, database_url: str) -> None:
    blobs = tmp_path / "blobs"
    _leftovers(blobs / STAGING)
    srv = ServerThread(make_config(tmp_path / "data", database_url, blobs.as_uri())).start()
    try:
        assert sorted(os.listdir(blobs / STAGING)) == KEPT
    finally:
        srv.stop()


def test_the_s3_backend_stages_under_the_data_dir_and_is_swept_too(
    tmp_path: Path, database_url: str, s3_endpoint: str, s3_bucket: str
) -> None:
    data = tmp_path / "data"
    _leftovers(data / "staging")
    cfg = make_config(data, database_url, f"s3://{s3_bucket}/depot", DEPOT_S3_ENDPOINT_URL=s3_endpoint)
    srv = ServerThread(cfg).start()
    try:
        assert sorted(os.listdir(data / "staging")) == KEPT
    finally:
        srv.stop()


def test_staged_files_are_swept_periodically_while_serving(tmp_path: Path, database_url: str) -> None:
    blobs = tmp_path / "blobs"
    # A 2 s grace sweeps every second (grace / 4, at least 1 s).
    # The grace must outlast the idle timeout (config checks it).
    env = {"DEPOT_STAGING_GRACE_S": "2", "DEPOT_UPLOAD_IDLE_TIMEOUT_S": "1"}
    srv = ServerThread(make_config(tmp_path / "data", database_url, blobs.as_uri(), **env)).start()
    try:
        leftover = blobs / STAGING / "upload-leftover"
        leftover.write_bytes(b"x")
        deadline = time.monotonic() + 15
        while leftover.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not leftover.exists()
    finally:
        srv.stop()


def _reason(err: grpc.RpcError) -> str:
    for key, value in err.trailing_metadata() or ():  # type: ignore[attr-defined]
        if key == "grpc-status-details-bin":
            info = error_details_pb2.ErrorInfo()
            status_pb2.Status.FromString(value).details[0].Unpack(info)
            return info.reason
    return ""


class _StalledUpload:
    """An UploadBlob stream that sends its header and one chunk, then nothing."""

    def __init__(self, address: str, key: str, size: int = 4 * 1024 * 1024):
        self.release = threading.Event()
        self.error: grpc.RpcError | None = None
        self.ended_after = 0.0
        self._address = address
        self._key = key
        self._size = size
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _requests(self) -> Iterator[mpb.UploadBlobRequest]:
        data = b"s" * self._size
        yield mpb.UploadBlobRequest(
            header=mpb.UploadBlobHeader(
                entity="team", digest=mpb.BlobDigest(algorithm="xxh3_128", digest=b64_xxh(data)), size=len(data)
            )
        )
        yield mpb.UploadBlobRequest(chunk=data[: 1024 * 1024])
        self.release.wait(60)  # bounded: the test releases it in any case

    def _run(self) -> None:
        start = time.monotonic()
        with grpc.insecure_channel(self._address) as ch:
            stub = manifest_pb2_grpc.ManifestServiceStub(ch)
            try:
                stub.UploadBlob(self._requests(), metadata=(("authorization", f"Bearer {self._key}"),), timeout=90)
            except grpc.RpcError as e:
                self.error = e
        self.ended_after = time.monotonic() - start

    def start(self) -> _StalledUpload:
        self._thread.start()
        return self

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def stop(self) -> None:
        self.release.set()
        self._thread.join(30)


def _wait_for_staged_upload(staging: Path) -> Path:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for name in os.listdir(staging) if staging.exists() else ():
            path = staging / name
            if name.startswith("upload-") and path.stat().st_size > 0:
                return path
        time.sleep(0.05)
    raise AssertionError(f"no upload was staged in {staging}")


def test_a_stalled_upload_is_closed_after_the_idle_timeout(tmp_path: Path, database_url: str) -> None:
    blobs = tmp_path / "blobs"
    cfg = make_config(tmp_path / "data", database_url, blobs.as_uri(), DEPOT_UPLOAD_IDLE_TIMEOUT_S="1")
    srv = ServerThread(cfg).start()
    create_team(srv.address, srv.admin_key, "team")
    upload = _StalledUpload(srv.address, srv.admin_key).start()
    try:
        _wait_for_staged_upload(blobs / STAGING)
        upload.join(20)
        assert upload.error is not None, "the stalled upload was not closed by the server"
        assert upload.error.code() == grpc.StatusCode.ABORTED, upload.error.details()  # type: ignore[attr-defined]
        assert _reason(upload.error) == "IDLE_TIMEOUT"
        assert "idle timeout" in upload.error.details()  # type: ignore[attr-defined]
        # Closed by the server's 1 s idle timeout, far from the client's 90 s deadline.
        assert upload.ended_after < 30
        assert os.listdir(blobs / STAGING) == []
        # An upload that keeps sending is not cut.
        with grpc.insecure_channel(srv.address) as ch:
            assert Stubs(ch, srv.admin_key).upload("team", b"y" * 100_000).created
    finally:
        upload.stop()
        srv.stop()


def _server(data: Path, port: int, database_url: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEPOT_")}
    env.update(DEPOT_DATA_DIR=str(data), DEPOT_LISTEN=f"127.0.0.1:{port}", DEPOT_DATABASE_URL=database_url)
    return subprocess.Popen(
        [sys.executable, "-m", "depot.cli", "server"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _wait_serving(data: Path, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_S
    while not (data / "server.json").exists():
        assert proc.poll() is None, f"depot server exited with {proc.returncode}"
        assert time.monotonic() < deadline, "depot server did not start"
        time.sleep(0.1)


@pytest.mark.slow
def test_a_sigkilled_servers_staged_upload_is_swept_on_restart(tmp_path: Path, database_url: str) -> None:
    data = tmp_path / "data"
    staging = data / "blobs" / STAGING
    port = free_port()
    proc = _server(data, port, database_url)
    upload = None
    try:
        _wait_serving(data, proc)
        key = (data / "admin.key").read_text().strip()
        create_team(f"127.0.0.1:{port}", key, "team")
        upload = _StalledUpload(f"127.0.0.1:{port}", key).start()
        staged = _wait_for_staged_upload(staging)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        upload.stop()
        # The crash left the partial upload where the blobs are, not in /tmp.
        assert staged.exists() and staged.stat().st_size > 0
        _age(staged, 2 * HOUR)
        (staging / "upload-inflight").write_bytes(b"x")  # another process's upload, just begun
        (data / "server.json").unlink(missing_ok=True)  # a SIGKILLed server does not remove it

        proc = _server(data, port, database_url)
        _wait_serving(data, proc)
        assert sorted(os.listdir(staging)) == ["upload-inflight"]
    finally:
        if upload is not None:
            upload.stop()
        if proc.poll() is None:
            proc.terminate()
            proc.wait(30)
