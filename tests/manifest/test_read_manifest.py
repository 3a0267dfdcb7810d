"""ReadManifest's filters and raw blocks, against a real server, and the SDK's streaming reader.

Manifests are written with the native ManifestWriter straight into the
server's blob directory (small blocks, so filters cross block boundaries),
then read through the all-in-one grpc.aio server.
"""

from __future__ import annotations

import hashlib
import io
import tracemalloc
from collections.abc import Iterable, Iterator
from pathlib import Path

import grpc
import pytest
from support.servers import ServerThread
from support.stubs import Stubs

from depot._client import Client
from depot._exceptions import InvalidArgumentError
from depot._manifest_read import iter_entries
from depot.manifest.v1 import manifest_pb2 as mpb
from depot.native import ManifestEntry, ManifestWriter, decode_block

ENTITY = "team"
# Siblings that sort between "data" and "data/" ("data.csv", "data-x"), and after ("data2/y").
SIBLINGS = ["a", "dat", "data", "data-x", "data.csv", "data/x", "data/y/z", "data0", "data2/y", "e"]


def _entry(path: str, i: int = 0) -> ManifestEntry:
    return ManifestEntry(path, "etag", f"{i:032x}", i, f"s3://bucket/{path}")


def store_manifest(server: ServerThread, entries: Iterable[ManifestEntry], block: int = 4096) -> str:
    """Writes a manifest into the server's local blob store; returns its id."""
    out = io.BytesIO()
    w = ManifestWriter(out, "md5", block_entries=block)
    w.add_many(entries)
    w.close()
    data = out.getvalue()
    manifest_id = hashlib.sha256(data).hexdigest()
    root = Path(server.config.manifest.storage_url.removeprefix("file://"))
    path = root / ENTITY / "manifests" / manifest_id[:2] / manifest_id
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return manifest_id


@pytest.fixture
def stubs(server: ServerThread, channel: grpc.Channel) -> Stubs:
    return Stubs(channel, server.admin_key)


@pytest.fixture
def client(server: ServerThread) -> Iterator[Client]:
    c = Client(server.address, server.admin_key)
    yield c
    c.close()


def _read(stubs: Stubs, manifest_id: str, **kw: object) -> list[ManifestEntry]:
    """Entries mode: what the server sends as entries."""
    req = mpb.ReadManifestRequest(entity=ENTITY, manifest_id=manifest_id, **kw)  # type: ignore[arg-type]
    return [
        ManifestEntry(e.path, e.algorithm, e.digest, e.size, e.ref, e.version_id, e.extra_json)
        for msg in stubs.man.ReadManifest(req, metadata=stubs.md)
        for e in msg.entries
    ]


def _raw(stubs: Stubs, manifest_id: str, **kw: object) -> list[ManifestEntry]:
    """Raw mode, decoded but untrimmed: every entry of every block sent."""
    req = mpb.ReadManifestRequest(entity=ENTITY, manifest_id=manifest_id, raw_blocks=True, **kw)  # type: ignore[arg-type]
    out: list[ManifestEntry] = []
    for msg in stubs.man.ReadManifest(req, metadata=stubs.md):
        assert not msg.entries
        for raw in msg.blocks:
            out += decode_block(raw)
    return out


def _sdk(client: Client, manifest_id: str, **kw: object) -> list[str]:
    return [e.path for batch in iter_entries(client, ENTITY, manifest_id, **kw) for e in batch]  # type: ignore[arg-type]


def _code(fn: object) -> tuple[grpc.StatusCode, str]:
    try:
        fn()  # type: ignore[operator]
    except grpc.RpcError as e:
        return e.code(), e.details() or ""  # type: ignore[attr-defined]
    return grpc.StatusCode.OK, ""


@pytest.mark.parametrize("block", [1, 2, 3, 4096])
def test_prefix_is_a_directory_never_a_sibling(server: ServerThread, stubs: Stubs, client: Client, block: int) -> None:
    entries = [_entry(p, i) for i, p in enumerate(SIBLINGS)]
    mid = store_manifest(server, entries, block)
    want = ["data", "data/x", "data/y/z"]
    for prefix in ("data", "data/"):
        assert [e.path for e in _read(stubs, mid, prefix=prefix)] == want
        assert _sdk(client, mid, prefix=prefix) == want
        # Raw mode sends whole blocks: a superset, in order, trimmed by the client.
        raw = [e.path for e in _raw(stubs, mid, prefix=prefix)]
        assert set(want) <= set(raw) and raw == sorted(raw)
    assert _sdk(client, mid, prefix="data/y") == ["data/y/z"]
    assert _sdk(client, mid, prefix="data2") == ["data2/y"]
    assert _sdk(client, mid, prefix="dat") == ["dat"]
    assert _sdk(client, mid, prefix="nope") == []
    assert _sdk(client, mid, prefix="zzz") == []
    assert _sdk(client, mid, prefix="0") == []


@pytest.mark.parametrize("block", [1, 3, 4096])
def test_names_first_last_missing(server: ServerThread, stubs: Stubs, client: Client, block: int) -> None:
    entries = [_entry(f"f/{i:04d}", i) for i in range(50)]
    mid = store_manifest(server, entries, block)
    names = ["f/0049", "f/0000", "missing", "f/0025", "f/0000", "0"]
    assert _read(stubs, mid, names=names) == [entries[0], entries[25], entries[49]]
    assert _sdk(client, mid, names=names) == ["f/0000", "f/0025", "f/0049"]
    assert _sdk(client, mid, names=["nope"]) == []
    # Filters narrow each other.
    assert _sdk(client, mid, names=names, prefix="f") == ["f/0000", "f/0025", "f/0049"]
    assert _read(stubs, mid, names=names, start_after="f/0000") == [entries[25], entries[49]]


def test_names_beyond_one_call_are_split_by_the_sdk(server: ServerThread, client: Client) -> None:
    entries = [_entry(f"{i:05d}", i) for i in range(2500)]
    mid = store_manifest(server, entries, 100)
    wanted = [f"{i:05d}" for i in range(0, 2500, 2)] + ["x"]
    assert _sdk(client, mid, names=wanted) == wanted[:-1]


def test_start_after(server: ServerThread, stubs: Stubs, client: Client) -> None:
    entries = [_entry(f"{i:03d}", i) for i in range(100)]
    mid = store_manifest(server, entries, 7)
    assert [e.path for e in _read(stubs, mid, start_after="041")] == [f"{i:03d}" for i in range(42, 100)]
    assert [e.path for e in _read(stubs, mid, start_after="041x")] == [f"{i:03d}" for i in range(42, 100)]
    assert _read(stubs, mid, start_after="999") == []
    assert [e.path for e in _read(stubs, mid, start_after="")] == [e.path for e in entries]
    raw = [e.path for e in _raw(stubs, mid, start_after="041")]
    # The block holding "041" onwards: it starts at most one block early.
    assert raw[-1] == "099" and "042" in raw and len(raw) <= 58 + 7
    assert [e.path for e in _read(stubs, mid, prefix="05", start_after="041")] == []


def test_raw_blocks_decode_to_entries_mode(server: ServerThread, stubs: Stubs, client: Client) -> None:
    entries = [
        ManifestEntry(f"d{i % 7}/ü{i:05d}", "md5", f"{i:032x}", i, "", "v" * (i % 2), '{"k": 1}' if i % 5 == 0 else "")
        for i in range(3000)
    ]
    entries.sort(key=lambda e: e.path.encode())
    mid = store_manifest(server, entries, 256)
    assert _raw(stubs, mid) == _read(stubs, mid) == entries
    assert [e for batch in iter_entries(client, ENTITY, mid) for e in batch] == entries
    for prefix in ("d3", "d6/", "d0/ü00000"):
        assert [e for b in iter_entries(client, ENTITY, mid, prefix=prefix) for e in b] == _read(
            stubs, mid, prefix=prefix
        )
    assert all(len(b) <= 100 for b in iter_entries(client, ENTITY, mid, batch=100))


def test_bad_filters_are_invalid_arguments_naming_the_field(server: ServerThread, stubs: Stubs) -> None:
    mid = store_manifest(server, [_entry("a")])
    cases = {
        "prefix": dict(prefix="../x"),
        "prefix ": dict(prefix="/"),
        "prefix  ": dict(prefix="a//b"),
        "names[1]": dict(names=["a", "b/../c"]),
        "names": dict(names=[f"n{i}" for i in range(1001)]),
        "raw_blocks": dict(names=["a"], raw_blocks=True),
        "start_after": dict(start_after="x" * 5000),
        "manifest_id": dict(manifest_id="nothex"),
    }
    for field, kw in cases.items():
        req = mpb.ReadManifestRequest(entity=ENTITY, **{"manifest_id": mid, **kw})  # type: ignore[arg-type]
        code, details = _code(lambda req=req: list(stubs.man.ReadManifest(req, metadata=stubs.md)))
        assert code == grpc.StatusCode.INVALID_ARGUMENT, (field, details)
    missing = mpb.ReadManifestRequest(entity=ENTITY, manifest_id="0" * 64, prefix="a")
    assert _code(lambda: list(stubs.man.ReadManifest(missing, metadata=stubs.md)))[0] == grpc.StatusCode.NOT_FOUND


def test_sdk_bad_prefix_names_the_field(server: ServerThread, client: Client) -> None:
    mid = store_manifest(server, [_entry("a")])
    with pytest.raises(InvalidArgumentError) as e:
        list(iter_entries(client, ENTITY, mid, prefix="a/../b"))
    assert e.value.field == "prefix"


def test_big_manifest_streams_in_bounded_memory(server: ServerThread, client: Client) -> None:
    """200k entries through the server: all arrive in order, none is held by the reader."""
    n = 200_000
    entries = (
        ManifestEntry(f"shard-{i // 1000:03d}/object-{i:07d}.bin", "etag", f"{i:032x}", i, f"s3://b/{i}")
        for i in range(n)
    )
    mid = store_manifest(server, entries)

    it = iter_entries(client, ENTITY, mid)
    first = next(it)
    count, last = len(first), first[-1].path
    del first
    # Traced from here: entries the reader kept would add up past the bound.
    tracemalloc.start()
    try:
        for batch in it:
            assert batch[0].path > last
            count += len(batch)
            last = batch[-1].path
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == n and last == f"shard-199/object-{n - 1:07d}.bin"
    # One 4 MiB message and its decoded blocks, not 200k entries (~60 MB).
    assert peak < 24 * 1024 * 1024, peak
