"""Small versions in two calls: PutManifest with the files inline, then
CreateArtifactVersion committing it (the path the SDK takes)."""

from __future__ import annotations

import concurrent.futures

import grpc
import pytest
from support.stubs import Stubs, b64_xxh

from depot.common.v1 import common_pb2
from depot.manifest.v1 import manifest_pb2 as mpb
from depot.metadata.v1 import metadata_pb2 as pb

PROJECT = "entities/team/projects/p"
COLL = f"{PROJECT}/artifacts/ds"


@pytest.fixture
def stubs(channel, server) -> Stubs:
    return Stubs(channel, server.admin_key)


def _entry(path: str, data: bytes, **kw: object) -> mpb.ManifestEntry:
    fields: dict[str, object] = {"algorithm": "xxh3_128", "digest": b64_xxh(data), "size": len(data), "content": data}
    fields.update(kw)
    return mpb.ManifestEntry(path=path, **fields)  # type: ignore[arg-type]


def _status(fn) -> tuple[grpc.StatusCode, str]:  # noqa: ANN001
    with pytest.raises(grpc.RpcError) as e:
        fn()
    return e.value.code(), e.value.details()  # type: ignore[attr-defined]


def _missing(stubs: Stubs, data: bytes) -> bool:
    req = mpb.FindMissingBlobsRequest(entity="team", blobs=[mpb.BlobDigest(algorithm="xxh3_128", digest=b64_xxh(data))])
    return len(stubs.man.FindMissingBlobs(req, metadata=stubs.md).missing) == 1


def _read_blob(stubs: Stubs, data: bytes) -> bytes:
    req = mpb.ReadBlobRequest(entity="team", digest=mpb.BlobDigest(algorithm="xxh3_128", digest=b64_xxh(data)))
    return b"".join(c.data for c in stubs.man.ReadBlob(req, metadata=stubs.md))


def _create(stubs: Stubs, ref: common_pb2.ManifestRef | None, **kw: object) -> pb.ArtifactVersion:
    req = pb.CreateArtifactVersionRequest(parent=PROJECT, artifact="ds", type="dataset", **kw)  # type: ignore[arg-type]
    if ref is not None:
        req.manifest.CopyFrom(ref)
    return stubs.artifacts.CreateArtifactVersion(req, metadata=stubs.md)


def test_inline_files_are_stored_and_the_version_committed_in_one_call(stubs: Stubs) -> None:
    v = stubs.log_small("team", "p", "ds", {"a.txt": b"alpha", "empty": b"", "b/c.txt": b"gamma"}, aliases=["prod"])
    assert (v.index, v.state, sorted(v.aliases)) == (0, "committed", ["latest", "prod"])
    assert v.file_count == 3
    assert _read_blob(stubs, b"alpha") == b"alpha"
    assert _read_blob(stubs, b"") == b""  # an empty file needs no upload
    entries = [
        e
        for batch in stubs.man.ReadManifest(
            mpb.ReadManifestRequest(entity="team", manifest_id=v.manifest_id), metadata=stubs.md
        )
        for e in batch.entries
    ]
    assert [(e.path, e.size, e.content) for e in entries] == [("a.txt", 5, b""), ("b/c.txt", 5, b""), ("empty", 0, b"")]
    assert stubs.get(f"{COLL}/versions/prod").uid == v.uid


def test_same_content_returns_the_existing_version_and_moves_only_new_aliases(stubs: Stubs) -> None:
    first = stubs.log_small("team", "p", "ds", {"f": b"1"})
    second = stubs.log_small("team", "p", "ds", {"f": b"2"})
    again = stubs.log_small("team", "p", "ds", {"f": b"1"}, aliases=["best"])
    assert (first.index, second.index) == (0, 1)
    assert again.uid == first.uid
    assert sorted(again.aliases) == ["best"]  # `latest` stays on v1
    assert stubs.get(f"{COLL}/versions/latest").index == 1


def test_concurrent_one_call_commits_are_gap_free(stubs: Stubs) -> None:
    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        made = list(pool.map(lambda i: stubs.log_small("team", "p", "ds", {"f": f"{i}".encode()}), range(48)))
    assert sorted(v.index for v in made) == list(range(48))
    assert stubs.get(f"{COLL}/versions/latest").index == 47


def test_a_retried_create_with_the_same_request_id_commits_once(stubs: Stubs) -> None:
    files = {"f": b"once"}
    a = stubs.log_small("team", "p", "ds", files, request_id="req-1")
    b = stubs.log_small("team", "p", "ds", files, request_id="req-1")
    assert a == b
    listed = stubs.artifacts.ListArtifactVersions(pb.ListArtifactVersionsRequest(parent=COLL), metadata=stubs.md)
    assert [v.index for v in listed.versions] == [0]


@pytest.mark.parametrize(
    ("entry", "code", "words"),
    [
        (_entry("f", b"real", digest=b64_xxh(b"other")), grpc.StatusCode.FAILED_PRECONDITION, "digest"),
        (_entry("f", b"four", size=5), grpc.StatusCode.INVALID_ARGUMENT, "size says 5"),
        (_entry("f", b"x" * (64 * 1024 + 1)), grpc.StatusCode.INVALID_ARGUMENT, "limited to 65536"),
        (
            _entry("f", b"ref", ref="s3://bucket/key", algorithm="etag", digest="abc"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "no content",
        ),
    ],
)
def test_bad_inline_content_is_refused_and_stores_nothing(
    stubs: Stubs, entry: mpb.ManifestEntry, code: grpc.StatusCode, words: str
) -> None:
    got, details = _status(lambda: stubs.put_manifest("team", [entry]))
    assert got == code and words in details
    if entry.content and not entry.ref:
        assert _missing(stubs, entry.content)


def test_inline_bytes_per_manifest_are_bounded(stubs: Stubs) -> None:
    files = [_entry(f"f{i:02d}", bytes([i]) * (64 * 1024)) for i in range(17)]  # 17 x 64 KiB > 1 MiB
    got, details = _status(lambda: stubs.put_manifest("team", files))
    assert got == grpc.StatusCode.INVALID_ARGUMENT and "per manifest" in details


def test_put_manifest_takes_at_most_1000_entries(stubs: Stubs) -> None:
    entries = [_entry(f"f{i:05d}", b"") for i in range(1001)]
    got, details = _status(lambda: stubs.put_manifest("team", entries))
    assert got == grpc.StatusCode.INVALID_ARGUMENT and "CreateManifest" in details


def test_bad_one_call_creates_leave_no_version(stubs: Stubs) -> None:
    ref = stubs.put_manifest("team", [_entry("f", b"data")])
    forged = common_pb2.ManifestRef()
    forged.CopyFrom(ref)
    forged.size += 1
    cases = [
        (lambda: _create(stubs, forged), "token"),
        (lambda: _create(stubs, ref, aliases=["latest"]), "reserved"),
        (lambda: _create(stubs, None, aliases=["prod"]), "no manifest"),
    ]
    for call, words in cases:
        got, details = _status(call)
        assert got == grpc.StatusCode.INVALID_ARGUMENT and words in details, details
    other = _status(
        lambda: stubs.artifacts.CreateArtifactVersion(
            pb.CreateArtifactVersionRequest(
                parent="entities/elsewhere/projects/p",
                artifact="ds",
                type="dataset",
                manifest=ref,
            ),
            metadata=stubs.md,
        )
    )
    assert other[0] == grpc.StatusCode.INVALID_ARGUMENT and "another entity" in other[1]
    got, _ = _status(lambda: stubs.get(f"{COLL}/versions/latest"))
    assert got == grpc.StatusCode.NOT_FOUND


def test_a_type_change_is_refused_in_the_one_call_path(stubs: Stubs) -> None:
    stubs.log_small("team", "p", "ds", {"f": b"1"})
    ref = stubs.put_manifest("team", [_entry("f", b"2")])
    req = pb.CreateArtifactVersionRequest(parent=PROJECT, artifact="ds", type="model", manifest=ref)
    got, details = _status(lambda: stubs.artifacts.CreateArtifactVersion(req, metadata=stubs.md))
    assert got == grpc.StatusCode.FAILED_PRECONDITION and "cannot be logged as 'model'" in details


def test_the_create_reply_is_the_version_as_read_back(stubs: Stubs) -> None:
    stubs.artifacts.CreateRun(pb.CreateRunRequest(parent=PROJECT, run_id="r1"), metadata=stubs.md)
    ref = stubs.put_manifest("team", [_entry("f", b"described")])
    req = pb.CreateArtifactVersionRequest(
        parent=PROJECT,
        artifact="ds",
        type="dataset",
        description="a version with everything set",
        metadata_json='{"b": 1, "a": {"z": [1, 2]}}',
        run=f"{PROJECT}/runs/r1",
        tags=["nightly", "eu"],
        aliases=["prod"],
        manifest=ref,
    )
    req.ttl.FromSeconds(3600)
    created = stubs.artifacts.CreateArtifactVersion(req, metadata=stubs.md)
    assert created == stubs.get(created.name)
    assert created.producer_run == f"{PROJECT}/runs/r1"
