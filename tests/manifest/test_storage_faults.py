"""A full or read-only blob disk is the operator's to fix, not "try again" (issue 9, item 5).

ENOSPC and EROFS used to reach the client as UNAVAILABLE (status.py's
generic OSError mapping), which the SDK re-sent five times. The store now
raises domain errors naming the path and the errno: a full disk is
RESOURCE_EXHAUSTED (STORAGE_FULL), a read-only one FAILED_PRECONDITION
(STORAGE_NOT_WRITABLE); neither is in the SDK's retryable codes.

The disk is real: a 2 MiB tmpfs mounted for the test (root only; the
test is skipped where mounting is not permitted), remounted read-only for
EROFS. No write is mocked.
"""

from __future__ import annotations

import errno
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from support.entities import create_team
from support.servers import ServerThread, make_config
from support.stubs import Stubs, b64_xxh

import depot
from depot.manifest.v1 import manifest_pb2 as mpb
from depot.services.common.status import to_status
from depot.services.manifest.blobs import BlobId, blob_key
from depot.services.manifest.store import STAGING

MIB = 1024 * 1024


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True, timeout=30)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs: the blob root of the server under test."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    try:
        _mount("-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt))
    except (OSError, subprocess.CalledProcessError) as e:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {e}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False, capture_output=True, timeout=30)


@pytest.fixture
def disk_server(small_disk: Path, tmp_path: Path, database_url: str) -> Iterator[ServerThread]:
    cfg = make_config(tmp_path / "depot-data", database_url, (small_disk / "blobs").as_uri())
    srv = ServerThread(cfg).start()
    create_team(srv.address, srv.admin_key, "team")
    yield srv
    srv.stop()


def _reason(err: grpc.RpcError) -> str:
    for key, value in err.trailing_metadata() or ():  # type: ignore[attr-defined]
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            info = error_details_pb2.ErrorInfo()
            status.details[0].Unpack(info)
            return info.reason
    return ""


def _refused(call: object) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call()  # type: ignore[operator]
    return caught.value


def _blob_path(root: Path, data: bytes) -> Path:
    return root / blob_key("team", BlobId("xxh3_128", b64_xxh(data)))


def _fill(path: Path) -> None:
    """Fills the disk ``path`` is on to its last byte."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for _ in range(10_000):  # bounded: the disk is 2 MiB
            os.write(fd, b"\0" * 4096)
        raise AssertionError("the disk did not fill up")
    except OSError as e:
        assert e.errno == errno.ENOSPC
    finally:
        os.close(fd)


def _staged(root: Path) -> list[str]:
    return os.listdir(root / STAGING)


def test_a_full_blob_disk_is_resource_exhausted_naming_path_and_errno_and_nothing_half_written(
    disk_server: ServerThread, small_disk: Path
) -> None:
    root = small_disk / "blobs"
    too_big = os.urandom(3 * MIB)  # more than the disk holds
    with grpc.insecure_channel(disk_server.address) as ch:
        s = Stubs(ch, disk_server.admin_key)
        err = _refused(lambda: s.upload("team", too_big))
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, err.details()  # type: ignore[attr-defined]
        assert _reason(err) == "STORAGE_FULL"
        assert "ENOSPC" in err.details() and str(root / STAGING) in err.details()  # type: ignore[attr-defined]
        # Nothing half-written is visible: no blob, no staged file, and the
        # blob is still reported missing.
        assert not _blob_path(root, too_big).exists()
        assert _staged(root) == []
        missing = s.man.FindMissingBlobs(
            mpb.FindMissingBlobsRequest(
                entity="team", blobs=[mpb.BlobDigest(algorithm="xxh3_128", digest=b64_xxh(too_big))]
            ),
            metadata=s.md,
        )
        assert len(missing.missing) == 1

        # A small inline manifest on a disk filled to the last byte: refused the same way.
        filler = small_disk / "filler"
        _fill(filler)
        content = b"inline bytes"
        entry = mpb.ManifestEntry(path="a.txt", algorithm="xxh3_128", digest=b64_xxh(content), size=len(content))
        entry.content = content
        err = _refused(lambda: s.put_manifest("team", [entry]))
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, err.details()  # type: ignore[attr-defined]
        assert "ENOSPC" in err.details()  # type: ignore[attr-defined]
        assert _staged(root) == []

        # Space freed: uploads work again, with no restart.
        filler.unlink()
        fits = os.urandom(MIB)
        assert s.upload("team", fits).created
        assert _blob_path(root, fits).read_bytes() == fits
        assert _staged(root) == []


def test_a_read_only_blob_disk_is_failed_precondition_naming_path_and_errno(
    disk_server: ServerThread, small_disk: Path
) -> None:
    root = small_disk / "blobs"
    data = os.urandom(64 * 1024)
    with grpc.insecure_channel(disk_server.address) as ch:
        s = Stubs(ch, disk_server.admin_key)
        _mount("-o", "remount,ro", str(small_disk))
        try:
            err = _refused(lambda: s.upload("team", data))
            assert err.code() == grpc.StatusCode.FAILED_PRECONDITION, err.details()  # type: ignore[attr-defined]
            assert _reason(err) == "STORAGE_NOT_WRITABLE"
            assert "EROFS" in err.details() and str(root / STAGING) in err.details()  # type: ignore[attr-defined]
        finally:
            _mount("-o", "remount,rw", str(small_disk))
        assert not _blob_path(root, data).exists()
        assert s.upload("team", data).created


@pytest.mark.parametrize(
    ("err", "code", "reason"),
    [
        (errno.ENOSPC, grpc.StatusCode.RESOURCE_EXHAUSTED, "STORAGE_FULL"),
        (errno.EDQUOT, grpc.StatusCode.RESOURCE_EXHAUSTED, "STORAGE_FULL"),
        (errno.EROFS, grpc.StatusCode.FAILED_PRECONDITION, "STORAGE_NOT_WRITABLE"),
        (errno.EACCES, grpc.StatusCode.FAILED_PRECONDITION, "STORAGE_NOT_WRITABLE"),
        (errno.ECONNRESET, grpc.StatusCode.UNAVAILABLE, "UNAVAILABLE"),
    ],
)
def test_a_disk_error_the_store_did_not_translate_is_still_not_try_again(
    err: int, code: grpc.StatusCode, reason: str
) -> None:
    got, message, got_reason, _ = to_status(OSError(err, os.strerror(err), "/data/blobs/x"))
    assert (got, got_reason) == (code, reason)
    # A disk error names its path (the operator's to fix); a connection error's text stays in the log.
    assert ("/data/blobs/x" in message) == (code != grpc.StatusCode.UNAVAILABLE)


def test_the_sdk_reports_a_full_disk_at_once_instead_of_retrying(
    disk_server: ServerThread, small_disk: Path, tmp_path: Path
) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(3 * MIB))
    start = time.monotonic()
    with depot.init(entity="team", project="p", address=disk_server.address, api_key=disk_server.admin_key) as run:
        art = depot.Artifact("too-big", type="dataset")
        art.add_file(big)
        with pytest.raises(depot.ResourceExhaustedError) as caught:
            run.log_artifact(art).wait()
    # Not retried: the SDK's retry window for transient errors is 30 s.
    assert time.monotonic() - start < 15
    assert "ENOSPC" in str(caught.value)
    assert _staged(small_disk / "blobs") == []
