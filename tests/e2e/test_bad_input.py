"""Bad input gets a precise gRPC status and writes nothing."""

from __future__ import annotations

import grpc
import pytest
from support.stubs import Stubs, b64_xxh

from depot.manifest.v1 import manifest_pb2 as mpb
from depot.metadata.v1 import metadata_pb2 as pb

COLL = "entities/team/projects/p/artifacts"


@pytest.fixture
def stubs(channel, server) -> Stubs:
    return Stubs(channel, server.admin_key)


def _code(excinfo: pytest.ExceptionInfo[grpc.RpcError]) -> grpc.StatusCode:
    return excinfo.value.code()  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", ["bad name", "a/b", "x" * 129, "", "é", ".."])
def test_invalid_artifact_name(stubs: Stubs, name: str) -> None:
    with pytest.raises(grpc.RpcError) as e:
        stubs.artifacts.CreateArtifactVersion(
            pb.CreateArtifactVersionRequest(parent="entities/team/projects/p", artifact=name, type="dataset"),
            metadata=stubs.md,
        )
    assert _code(e) == grpc.StatusCode.INVALID_ARGUMENT
    assert "artifact" in e.value.details()  # type: ignore[attr-defined]


def test_valid_name_limits_are_accepted(stubs: Stubs) -> None:
    v = stubs.log("team", "p", "A-b_c.1" + "x" * 121, {"f": b"1"})
    assert v.index == 0


def test_type_change_is_failed_precondition(stubs: Stubs) -> None:
    stubs.log("team", "p", "ds", {"f": b"1"})
    with pytest.raises(grpc.RpcError) as e:
        stubs.log("team", "p", "ds", {"f": b"2"}, type_="model")
    assert _code(e) == grpc.StatusCode.FAILED_PRECONDITION
    assert stubs.get(f"{COLL}/ds/versions/latest").index == 0


def test_unknown_alias_and_version_are_not_found(stubs: Stubs) -> None:
    stubs.log("team", "p", "ds", {"f": b"1"})
    for ref in ("nope", "v7"):
        with pytest.raises(grpc.RpcError) as e:
            stubs.get(f"{COLL}/ds/versions/{ref}")
        assert _code(e) == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize("path", ["../escape", "a/../../b", "/etc/passwd", "a\0b", "a//b", "./a", ""])
def test_bad_entry_paths_are_refused(stubs: Stubs, server, path: str) -> None:
    data = b"payload"
    stubs.upload("team", data)
    entry = mpb.ManifestEntry(path=path, algorithm="xxh3_128", digest=b64_xxh(data), size=len(data))
    with pytest.raises(grpc.RpcError) as e:
        stubs.manifest("team", [entry])
    assert _code(e) == grpc.StatusCode.INVALID_ARGUMENT
    blobs = server.config.data_dir.parent / "blobs"
    assert not list(blobs.rglob("manifests/*/*")), "no manifest may be stored"


def test_unsorted_or_duplicate_entries_are_refused(stubs: Stubs) -> None:
    data = b"x"
    stubs.upload("team", data)
    e = dict(algorithm="xxh3_128", digest=b64_xxh(data), size=1)
    for paths in (["b", "a"], ["a", "a"]):
        with pytest.raises(grpc.RpcError) as exc:
            stubs.manifest("team", [mpb.ManifestEntry(path=p, **e) for p in paths])
        assert _code(exc) == grpc.StatusCode.INVALID_ARGUMENT


def test_blob_not_matching_its_digest_is_refused(stubs: Stubs, server) -> None:
    with pytest.raises(grpc.RpcError) as e:
        stubs.upload("team", b"the real bytes", digest=b64_xxh(b"other bytes"))
    assert _code(e) == grpc.StatusCode.FAILED_PRECONDITION
    blobs = server.config.data_dir.parent / "blobs"
    assert not list(blobs.rglob("blobs/*/*/*")), "nothing may be stored"


def test_manifest_referencing_a_missing_blob_is_refused(stubs: Stubs) -> None:
    entry = mpb.ManifestEntry(path="f", algorithm="xxh3_128", digest=b64_xxh(b"never sent"), size=10)
    with pytest.raises(grpc.RpcError) as e:
        stubs.manifest("team", [entry])
    assert _code(e) == grpc.StatusCode.FAILED_PRECONDITION


@pytest.mark.parametrize("alias", ["latest", "v0", "v12"])
def test_reserved_aliases_cannot_be_set(stubs: Stubs, alias: str) -> None:
    stubs.log("team", "p", "ds", {"f": b"1"})
    pending = stubs.artifacts.CreateArtifactVersion(
        pb.CreateArtifactVersionRequest(parent="entities/team/projects/p", artifact="ds", type="dataset"),
        metadata=stubs.md,
    )
    stubs.upload("team", b"2")
    ref = stubs.manifest("team", [mpb.ManifestEntry(path="f", algorithm="xxh3_128", digest=b64_xxh(b"2"), size=1)])
    with pytest.raises(grpc.RpcError) as e:
        stubs.commit(pending.uid, ref, [alias])
    assert _code(e) == grpc.StatusCode.INVALID_ARGUMENT
    latest = stubs.get(f"{COLL}/ds/versions/latest")
    assert latest.index == 0, "the failed commit must not create a version"


def test_forged_manifest_token_is_refused(stubs: Stubs) -> None:
    pending = stubs.artifacts.CreateArtifactVersion(
        pb.CreateArtifactVersionRequest(parent="entities/team/projects/p", artifact="ds", type="dataset"),
        metadata=stubs.md,
    )
    stubs.upload("team", b"2")
    ref = stubs.manifest("team", [mpb.ManifestEntry(path="f", algorithm="xxh3_128", digest=b64_xxh(b"2"), size=1)])
    ref.size = 999  # claim a size the manifest service never vouched for
    with pytest.raises(grpc.RpcError) as e:
        stubs.commit(pending.uid, ref, [])
    assert _code(e) == grpc.StatusCode.INVALID_ARGUMENT


def test_calls_without_a_valid_key_are_unauthenticated(channel) -> None:
    for key in ("", "dpt_nope_nope", "garbage"):
        stubs = Stubs(channel, key)
        md = stubs.md if key else ()
        with pytest.raises(grpc.RpcError) as e:
            stubs.access.GetCaller(pb.GetCallerRequest(), metadata=md)
        assert _code(e) == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.RpcError) as e:
            stubs.man.FindMissingBlobs(mpb.FindMissingBlobsRequest(entity="team"), metadata=md)
        assert _code(e) == grpc.StatusCode.UNAUTHENTICATED


def test_error_carries_machine_readable_reason(stubs: Stubs) -> None:
    from google.rpc import error_details_pb2, status_pb2

    with pytest.raises(grpc.RpcError) as e:
        stubs.upload("team", b"abc", digest=b64_xxh(b"xyz"))
    trailers = dict(e.value.trailing_metadata())  # type: ignore[attr-defined]
    status = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    assert info.reason == "DIGEST_MISMATCH" and info.metadata["field"] == "digest"
