"""Manifest tokens expire: metadata commits a manifest built at most grace/2 ago.

The manifest service refreshes a build's blobs by half the GC's grace
period (docs/gc.md); a commit later than that could name blobs the
collector freed, so metadata refuses it (MANIFEST_EXPIRED) and the SDK
raises ManifestExpiredError. The build time is signed into the token.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from support.entities import create_team
from support.servers import ServerThread, make_config
from support.stubs import Stubs, b64_xxh

import depot
from depot._exceptions import from_rpc_error
from depot.common.v1 import common_pb2
from depot.manifest.v1 import manifest_pb2 as mpb
from depot.metadata.v1 import metadata_pb2 as pb
from depot.services.allinone.app import internal_secret
from depot.services.common.credentials import MANIFEST_CLOCK_SKEW_S, check_manifest_age, sign_manifest
from depot.services.common.errors import ErrorReason, FailedPrecondition

GRACE_S = 8.0  # tokens live 4 s
PROJECT = "entities/team/projects/p"


@pytest.fixture
def server(tmp_path: Path, database_url: str) -> Iterator[ServerThread]:
    cfg = make_config(tmp_path / "data", database_url, (tmp_path / "blobs").as_uri(), DEPOT_GRACE_PERIOD_S=str(GRACE_S))
    srv = ServerThread(cfg).start()
    create_team(srv.address, srv.admin_key, "team")
    yield srv
    srv.stop()


@pytest.fixture
def stubs(server: ServerThread) -> Iterator[Stubs]:
    with grpc.insecure_channel(server.address) as ch:
        yield Stubs(ch, server.admin_key)


def _ref(stubs: Stubs, data: bytes) -> common_pb2.ManifestRef:
    stubs.upload("team", data)
    entry = mpb.ManifestEntry(path="f", algorithm="xxh3_128", digest=b64_xxh(data), size=len(data))
    return stubs.manifest("team", [entry])


def _commit(stubs: Stubs, ref: common_pb2.ManifestRef) -> pb.ArtifactVersion:
    req = pb.CreateArtifactVersionRequest(parent=PROJECT, artifact="ds", type="dataset", manifest=ref)
    return stubs.artifacts.CreateArtifactVersion(req, metadata=stubs.md)


def _refused(stubs: Stubs, ref: common_pb2.ManifestRef) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as e:
        _commit(stubs, ref)
    return e.value


def _versions(stubs: Stubs) -> int:
    req = pb.ListArtifactVersionsRequest(parent=f"{PROJECT}/artifacts/ds")
    try:
        return len(stubs.artifacts.ListArtifactVersions(req, metadata=stubs.md).versions)
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.NOT_FOUND  # no version was ever committed
        return 0


def _resigned(server: ServerThread, ref: common_pb2.ManifestRef, create_time_ms: int) -> common_pb2.ManifestRef:
    """``ref`` dated ``create_time_ms`` with a valid token, as only the manifest service could sign it."""
    fields = (ref.entity, ref.manifest_id, ref.digest, ref.digest_algorithm, ref.size, ref.file_count, create_time_ms)
    out = common_pb2.ManifestRef()
    out.CopyFrom(ref)
    out.create_time_unix_ms = create_time_ms
    out.token = sign_manifest(internal_secret(server.config.data_dir), *fields)
    return out


def test_the_build_time_is_taken_when_the_build_begins(stubs: Stubs) -> None:
    before = int(time.time() * 1000)
    ref = _ref(stubs, b"when")
    assert before <= ref.create_time_unix_ms <= int(time.time() * 1000)


def test_a_fresh_token_commits(stubs: Stubs) -> None:
    v = _commit(stubs, _ref(stubs, b"fresh"))
    assert v.state == "committed" and v.file_count == 1


def test_a_token_older_than_half_the_grace_is_refused_and_commits_nothing(stubs: Stubs) -> None:
    ref = _ref(stubs, b"old")
    # Past the token's life (grace/2 after the build began), not a timing assertion.
    time.sleep(max(0.0, ref.create_time_unix_ms / 1000 + GRACE_S / 2 + 0.5 - time.time()))
    err = _refused(stubs, ref)
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "manifest built more than 4 seconds ago" in err.details()
    assert "log the artifact again" in err.details()
    sdk = from_rpc_error(err)
    assert isinstance(sdk, depot.ManifestExpiredError) and isinstance(sdk, depot.FailedPreconditionError)
    assert (sdk.reason, sdk.field) == ("MANIFEST_EXPIRED", "manifest.create_time_unix_ms")
    assert _versions(stubs) == 0
    # Building the same manifest again gives a fresh token that commits.
    assert _commit(stubs, _ref(stubs, b"old")).state == "committed"


def test_a_pending_version_commit_checks_the_age_too(stubs: Stubs, server: ServerThread) -> None:
    pending = stubs.artifacts.CreateArtifactVersion(
        pb.CreateArtifactVersionRequest(parent=PROJECT, artifact="ds", type="dataset"), metadata=stubs.md
    )
    old = _resigned(server, _ref(stubs, b"pending"), int((time.time() - GRACE_S) * 1000))
    req = pb.CommitArtifactVersionRequest(uid=pending.uid, manifest=old)
    with pytest.raises(grpc.RpcError) as e:
        stubs.artifacts.CommitArtifactVersion(req, metadata=stubs.md)
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "log the artifact again" in e.value.details()


def test_a_tampered_create_time_fails_the_signature(stubs: Stubs, server: ServerThread) -> None:
    ref = _ref(stubs, b"tampered")
    for shift_ms in (1, -1, 3600_000):
        forged = common_pb2.ManifestRef()
        forged.CopyFrom(ref)
        forged.create_time_unix_ms += shift_ms
        err = _refused(stubs, forged)
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "manifest token" in err.details()
    # An expired token moved to the present is no token either.
    old = _resigned(server, ref, int((time.time() - GRACE_S) * 1000))
    assert _refused(stubs, old).code() == grpc.StatusCode.FAILED_PRECONDITION
    old.create_time_unix_ms = int(time.time() * 1000)
    assert _refused(stubs, old).code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _versions(stubs) == 0


def test_a_token_dated_in_the_future_beyond_the_skew_is_refused(stubs: Stubs, server: ServerThread) -> None:
    ref = _ref(stubs, b"future")
    ahead = _resigned(server, ref, int((time.time() + MANIFEST_CLOCK_SKEW_S + 60) * 1000))
    err = _refused(stubs, ahead)
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "in the future" in err.details()
    # Within the skew it commits.
    assert _commit(stubs, _resigned(server, ref, int((time.time() + 5) * 1000))).state == "committed"


def test_the_age_limit_is_inclusive_and_names_the_field() -> None:
    check_manifest_age(1_000_000, 10.0, 1010.0)
    check_manifest_age(1_000_000, 10.0, 1000.0 - MANIFEST_CLOCK_SKEW_S)
    with pytest.raises(FailedPrecondition) as e:
        check_manifest_age(1_000_000, 10.0, 1010.001)
    assert e.value.reason == ErrorReason.MANIFEST_EXPIRED and e.value.field == "manifest.create_time_unix_ms"
    with pytest.raises(FailedPrecondition, match="in the future"):
        check_manifest_age(1_000_000, 10.0, 1000.0 - MANIFEST_CLOCK_SKEW_S - 0.001)
