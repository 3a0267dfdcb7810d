"""The SDK's uploads: small files in batches, large ones streamed, a file
edited after it was added still caught, and the client batch helpers."""

from __future__ import annotations

import collections
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from support.servers import ServerThread

import depot
from depot import _blobs
from depot._exceptions import DigestMismatchError, InvalidArgumentError, NotFoundError
from depot.native import hash_bytes

MIB = 1024 * 1024


class _Counter(grpc.UnaryUnaryClientInterceptor, grpc.StreamUnaryClientInterceptor):  # type: ignore[misc]
    """Counts the manifest service's calls by method name."""

    def __init__(self) -> None:
        self.calls: collections.Counter[str] = collections.Counter()

    def _count(self, details: Any) -> None:
        self.calls[details.method.rsplit("/", 1)[1]] += 1

    def intercept_unary_unary(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        self._count(details)
        return continuation(details, request)

    def intercept_stream_unary(self, continuation: Callable[..., Any], details: Any, requests: Any) -> Any:
        self._count(details)
        return continuation(details, requests)


def _counting(run: depot.Run) -> _Counter:
    counter = _Counter()
    client = run._client
    client._bind_manifest(grpc.intercept_channel(client._mchannel, counter))
    return counter


def _b64(data: bytes) -> str:
    import base64

    return base64.b64encode(hash_bytes(data, ("xxh3_128",))[0]).decode()


@pytest.mark.slow
@pytest.mark.timeout(300)  # 10,000 files written, logged and downloaded on a busy 2-core machine
def test_ten_thousand_small_files_round_trip_in_batches(server: ServerThread, tmp_path: Path) -> None:
    n = 10_000
    src = tmp_path / "src"
    files = {}
    for i in range(n):
        d = src / f"d{i // 1000}"
        d.mkdir(parents=True, exist_ok=True)
        data = os.urandom(4096) if i % 1000 else b""  # a few empty files too
        (d / f"f{i}.bin").write_bytes(data)
        files[f"d{i // 1000}/f{i}.bin"] = data
    with depot.init(entity="team", project="p", job_type="t", address=server.address, api_key=server.admin_key) as run:
        counter = _counting(run)
        art = depot.Artifact("many", type="dataset")
        art.add_dir(src)
        run.log_artifact(art).wait()
    uploads = counter.calls["BatchUpdateBlobs"] + counter.calls["UploadBlob"]
    assert 0 < uploads < n / 100, counter.calls
    assert counter.calls["UploadBlob"] == 0
    out = depot.Api(server.address, server.admin_key).artifact("team/p/many:latest").download(tmp_path / "out")
    got = {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert got == files


def test_small_and_large_files_log_and_download(server: ServerThread, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    files = {
        "big1.bin": os.urandom(9 * MIB + 3),  # several upload chunks
        "big2.bin": os.urandom(SMALL + 1),
        "edge.bin": os.urandom(SMALL),  # the largest batched file
        **{f"s{i}.txt": os.urandom(70_000 + i) for i in range(40)},  # past the inline limit
    }
    for name, data in files.items():
        (src / name).write_bytes(data)
    with depot.init(entity="team", project="p", job_type="t", address=server.address, api_key=server.admin_key) as run:
        counter = _counting(run)
        art = depot.Artifact("mixed", type="dataset")
        art.add_dir(src)
        run.log_artifact(art).wait()
        # The same content again: everything is found, nothing is sent.
        again = depot.Artifact("mixed-again", type="dataset")
        again.add_dir(src)
        before = dict(counter.calls)
        run.log_artifact(again).wait()
    assert counter.calls["UploadBlob"] == 2 and before["UploadBlob"] == 2
    assert counter.calls["BatchUpdateBlobs"] == before["BatchUpdateBlobs"] >= 1
    out = depot.Api(server.address, server.admin_key).artifact("team/p/mixed:latest").download(tmp_path / "out")
    for name, data in files.items():
        assert (out / name).read_bytes() == data


SMALL = _blobs.SMALL_BLOB


@pytest.mark.parametrize("size", [100_000, SMALL + 10], ids=["batched", "streamed"])
def test_a_file_edited_after_it_was_added_is_caught(server: ServerThread, tmp_path: Path, size: int) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for i in range(5):
        (src / f"f{i}.bin").write_bytes(os.urandom(size))
    art = depot.Artifact("edited", type="dataset")
    art.add_dir(src)
    edited = src / "f3.bin"
    edited.write_bytes(os.urandom(size))  # same size, new bytes
    with depot.init(entity="team", project="p", job_type="t", address=server.address, api_key=server.admin_key) as run:
        with pytest.raises(DigestMismatchError) as info:
            run.log_artifact(art).wait()
        assert str(edited) in str(info.value)
        (src / "f1.bin").write_bytes(os.urandom(size + 7))  # a new size is caught too
        art2 = depot.Artifact("edited2", type="dataset")
        art2.add_file(str(src / "f1.bin"))
        (src / "f1.bin").write_bytes(os.urandom(size + 9))
        with pytest.raises(DigestMismatchError):
            run.log_artifact(art2).wait()


def test_client_batch_helpers(server: ServerThread) -> None:
    client = depot.Client(server.address, server.admin_key)
    try:
        datas = [os.urandom(200 + i) for i in range(20)]
        blobs = [("xxh3_128", _b64(d), d) for d in datas]
        assert _blobs.update_blobs(client, "team", blobs) == [True] * 20
        assert _blobs.update_blobs(client, "team", blobs[:3]) == [False] * 3
        assert _blobs.read_blobs(client, "team", "", [(a, d) for a, d, _ in blobs]) == datas
        with pytest.raises(NotFoundError):
            _blobs.read_blobs(client, "team", "", [("xxh3_128", _b64(b"never stored"))])
        with pytest.raises(InvalidArgumentError):
            _blobs.update_blobs(client, "team", [("xxh3_128", _b64(b"x"), os.urandom(9 * MIB))])
    finally:
        client.close()


def test_batches_keep_within_the_limits() -> None:
    sizes = [3, 3, 3, 5, 1, 0, 10]
    assert list(_blobs.batches(sizes, int, max_blobs=3, max_bytes=10)) == [[3, 3, 3], [5, 1, 0], [10]]
    assert list(_blobs.batches([], int)) == []
    with pytest.raises(ValueError):
        list(_blobs.batches([11], int, max_bytes=10))
