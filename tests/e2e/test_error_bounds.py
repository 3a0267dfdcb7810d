"""Errors stay small and bad characters are the caller's error (issue 8, round 2).

- An error message echoes the caller's value; unbounded, a 6,000-character
  id or name pushed the trailers past the client's metadata limit and the
  answer became RESOURCE_EXHAUSTED ("received metadata size exceeds soft
  limit"). Every message is now cut at status.MAX_MESSAGE_BYTES.
- NUL in a string no edge check knows of is refused by PostgreSQL; that
  refusal is INVALID_ARGUMENT, found where errors become statuses, not by
  walking every request before authentication.
"""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from support.stubs import Stubs

from depot.manifest.v1 import manifest_pb2 as mpb
from depot.metadata.v1 import metadata_pb2 as pb

INVALID = grpc.StatusCode.INVALID_ARGUMENT
# services/common/status.py MAX_MESSAGE_BYTES: an error stays a small trailer.
MAX_MESSAGE_BYTES = 1000


@pytest.fixture
def stubs(channel, server) -> Stubs:
    return Stubs(channel, server.admin_key)


def _error(fn) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        fn()
    return info.value


def _status(e: grpc.RpcError) -> status_pb2.Status:
    for k, v in e.trailing_metadata() or ():  # type: ignore[attr-defined]
        if k == "grpc-status-details-bin":
            return status_pb2.Status.FromString(v)
    raise AssertionError("no grpc-status-details-bin trailer")


def _assert_bounded(e: grpc.RpcError, code: grpc.StatusCode) -> status_pb2.Status:
    assert e.code() == code, e.details()  # type: ignore[attr-defined]
    details = e.details() or ""  # type: ignore[attr-defined]
    assert len(details.encode()) <= MAX_MESSAGE_BYTES
    status = _status(e)
    assert status.message == details
    return status


@pytest.mark.parametrize("key_id", ["x" * 6000, "ab" * 3000, "é" * 6000, "ABC", "12 34", ""])
def test_revoke_key_with_a_malformed_id_is_invalid_argument(stubs: Stubs, key_id: str) -> None:
    e = _error(lambda: stubs.access.RevokeApiKey(pb.RevokeApiKeyRequest(id=key_id), metadata=stubs.md))
    status = _assert_bounded(e, INVALID)
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    assert info.metadata["field"] == "id"


def test_revoke_key_unknown_hex_id_is_not_found(stubs: Stubs) -> None:
    e = _error(lambda: stubs.access.RevokeApiKey(pb.RevokeApiKeyRequest(id="0123456789ab"), metadata=stubs.md))
    _assert_bounded(e, grpc.StatusCode.NOT_FOUND)


@pytest.mark.parametrize(
    "name",
    [
        "entities/" + "a" * 6000,
        "entities/" + "é" * 6000,
        "entities/team/projects/p/artifacts/" + "\u202e" * 5000 + "/versions/v0",
        "entities/team/projects/p/artifacts/ds/versions/" + "v" * 8000,
    ],
    ids=["ascii", "two-byte", "three-byte", "long-alias"],
)
def test_long_names_answer_a_bounded_error(stubs: Stubs, name: str) -> None:
    e = _error(lambda: stubs.artifacts.GetArtifactVersion(pb.GetArtifactVersionRequest(name=name), metadata=stubs.md))
    assert e.code() != grpc.StatusCode.RESOURCE_EXHAUSTED  # type: ignore[attr-defined]
    _assert_bounded(e, e.code())  # type: ignore[attr-defined]
    assert e.code() in (INVALID, grpc.StatusCode.NOT_FOUND)  # type: ignore[attr-defined]


def test_a_cut_message_ends_with_an_ellipsis(stubs: Stubs) -> None:
    e = _error(
        lambda: stubs.artifacts.GetArtifactVersion(
            pb.GetArtifactVersionRequest(name="entities/" + "a" * 6000), metadata=stubs.md
        )
    )
    assert e.details().endswith("\u2026")  # type: ignore[attr-defined]


def test_resource_name_errors_name_the_singular_parts(stubs: Stubs) -> None:
    e = _error(lambda: stubs.artifacts.GetArtifactVersion(pb.GetArtifactVersionRequest(name="nope"), metadata=stubs.md))
    assert e.code() == INVALID  # type: ignore[attr-defined]
    expected = "entities/{entity}/projects/{project}/artifacts/{artifact}/versions/{version}"
    assert expected in e.details()  # type: ignore[attr-defined]
    e = _error(lambda: stubs.artifacts.GetRun(pb.GetRunRequest(name="entities/x"), metadata=stubs.md))
    assert "entities/{entity}/projects/{project}/runs/{run}" in e.details()  # type: ignore[attr-defined]


def test_nul_reaching_the_database_is_invalid_argument(stubs: Stubs) -> None:
    # The API key's description has no edge check of its own: PostgreSQL
    # refuses the NUL and the answer still names the caller's mistake.
    e = _error(lambda: stubs.access.CreateApiKey(pb.CreateApiKeyRequest(description="a\0b"), metadata=stubs.md))
    assert e.code() == INVALID, e.details()  # type: ignore[attr-defined]
    assert "NUL" in e.details()  # type: ignore[attr-defined]


def test_requests_holding_nul_are_authenticated_first(channel) -> None:
    # No walk of every string before authentication: a keyless request with
    # NUL in it is UNAUTHENTICATED like any keyless request.
    stubs = Stubs(channel, "none")
    entries = [mpb.ManifestEntry(path=f"f{i}", algorithm="xxh3_128", digest="x", size=1) for i in range(999)]
    entries.append(mpb.ManifestEntry(path="a\0b", algorithm="xxh3_128", digest="x", size=1))
    req = mpb.PutManifestRequest(header=mpb.ManifestHeader(entity="team", digest_algorithm="xxh3_128"), entries=entries)
    e = _error(lambda: stubs.man.PutManifest(req))
    assert e.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]
