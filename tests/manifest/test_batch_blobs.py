"""BatchUpdateBlobs / BatchReadBlobs against a real server: all or nothing,
dedup, the per-call limits, NOT_FOUND naming the blob, and who may read."""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterator

import grpc
import pytest
from support.servers import ServerThread
from support.stubs import Stubs, b64_xxh
from support.world import TEAM, World, code

from depot.manifest.v1 import manifest_pb2 as mpb
from depot.metadata.v1 import metadata_pb2 as pb

MIB = 1024 * 1024


def _digest(data: bytes, algorithm: str = "xxh3_128") -> mpb.BlobDigest:
    if algorithm == "md5":
        return mpb.BlobDigest(algorithm="md5", digest=base64.b64encode(hashlib.md5(data).digest()).decode())
    return mpb.BlobDigest(algorithm="xxh3_128", digest=b64_xxh(data))


def _update(stubs: Stubs, entity: str, blobs: list[tuple[mpb.BlobDigest, bytes]]) -> mpb.BatchUpdateBlobsResponse:
    req = mpb.BatchUpdateBlobsRequest(entity=entity, blobs=[mpb.BlobData(digest=d, data=b) for d, b in blobs])
    return stubs.man.BatchUpdateBlobs(req, metadata=stubs.md)


def _read(stubs: Stubs, entity: str, digests: list[mpb.BlobDigest], manifest_id: str = "") -> list[bytes]:
    req = mpb.BatchReadBlobsRequest(entity=entity, digests=digests, manifest_id=manifest_id)
    return [b.data for b in stubs.man.BatchReadBlobs(req, metadata=stubs.md).blobs]


def _missing(stubs: Stubs, entity: str, digests: list[mpb.BlobDigest]) -> list[str]:
    resp = stubs.man.FindMissingBlobs(mpb.FindMissingBlobsRequest(entity=entity, blobs=digests), metadata=stubs.md)
    return [b.digest for b in resp.missing]


def _reason(err: grpc.RpcError) -> tuple[str, str]:
    """The AIP-193 ErrorInfo's reason and field."""
    from google.rpc import error_details_pb2, status_pb2

    trailers = dict(err.trailing_metadata() or ())  # type: ignore[attr-defined]
    status = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    return info.reason, info.metadata["field"]


def _error(fn: object) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        fn()  # type: ignore[operator]
    return info.value


# A batch answer may hold 8 MiB: past gRPC's default 4 MiB (the SDK's channels allow 16).
_BIG_MESSAGES = [("grpc.max_receive_message_length", 16 * MIB)]


@pytest.fixture
def admin(server: ServerThread) -> Iterator[Stubs]:
    with grpc.insecure_channel(server.address, options=_BIG_MESSAGES) as ch:
        yield Stubs(ch, server.admin_key)


def test_a_batch_is_stored_read_back_and_deduplicated(admin: Stubs) -> None:
    datas = [os.urandom(100 + i) for i in range(300)] + [b""]
    blobs = [(_digest(d, "md5" if i % 3 == 0 else "xxh3_128"), d) for i, d in enumerate(datas)]
    blobs.append(blobs[5])  # a repeat inside the batch
    resp = _update(admin, "team", blobs)
    assert [b.created for b in resp.blobs] == [True] * len(datas) + [False]
    assert [b.size for b in resp.blobs] == [len(d) for _, d in blobs]
    assert [b.digest for b in resp.blobs] == [d for d, _ in blobs]
    assert _missing(admin, "team", [d for d, _ in blobs]) == []
    assert _read(admin, "team", [d for d, _ in blobs]) == [d for _, d in blobs]
    # Sent again: already there, nothing created.
    assert not any(b.created for b in _update(admin, "team", blobs).blobs)


def test_a_corrupt_blob_stores_nothing_of_its_batch(admin: Stubs) -> None:
    datas = [os.urandom(64) for _ in range(10)]
    blobs = [(_digest(d), d) for d in datas]
    blobs[7] = (blobs[7][0], b"not what was hashed")
    err = _error(lambda: _update(admin, "team", blobs))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "blobs[7]" in (err.details() or "") and "nothing of the batch was stored" in (err.details() or "")
    assert _reason(err) == ("DIGEST_MISMATCH", "blobs[7].data")
    assert len(_missing(admin, "team", [d for d, _ in blobs])) == 10


def test_bad_input_is_refused_naming_the_field(admin: Stubs) -> None:
    ok = os.urandom(10)
    bad_id = mpb.BlobDigest(algorithm="xxh3_128", digest="not base64!")
    err = _error(lambda: _update(admin, "team", [(_digest(ok), ok), (bad_id, ok)]))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "blobs[1]" in (err.details() or "")
    assert _reason(err)[1] == "blobs[1].digest.digest"
    sha = mpb.BlobDigest(algorithm="sha256", digest=_digest(ok).digest)
    err = _error(lambda: _update(admin, "team", [(sha, ok)]))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "blobs[0]" in (err.details() or "")
    many = [(_digest(i.to_bytes(4, "big")), i.to_bytes(4, "big")) for i in range(1001)]
    err = _error(lambda: _update(admin, "team", many))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "1000" in (err.details() or "")
    big = [os.urandom(3 * MIB) for _ in range(3)]  # 9 MiB: over the 8 MiB of one call
    err = _error(lambda: _update(admin, "team", [(_digest(b), b) for b in big]))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "UploadBlob" in (err.details() or "")
    # Nothing of the refused calls was stored.
    assert len(_missing(admin, "team", [_digest(ok), *(_digest(b) for b in big)])) == 4
    err = _error(lambda: _update(admin, "nobody-here", [(_digest(ok), ok)]))
    assert err.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED)


def test_read_names_a_missing_blob_and_refuses_an_oversized_batch(admin: Stubs) -> None:
    here, absent = os.urandom(50), os.urandom(50)
    _update(admin, "team", [(_digest(here), here)])
    err = _error(lambda: _read(admin, "team", [_digest(here), _digest(absent)]))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert "digests[1]" in (err.details() or "") and _digest(absent).digest in (err.details() or "")
    big = [os.urandom(5 * MIB) for _ in range(2)]
    for b in big:
        admin.upload("team", b)
    assert _read(admin, "team", [_digest(big[0])]) == [big[0]]
    err = _error(lambda: _read(admin, "team", [_digest(b) for b in big]))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "ReadBlob" in (err.details() or "")
    many = [_digest(here)] * 1001
    assert _error(lambda: _read(admin, "team", many)).code() == grpc.StatusCode.INVALID_ARGUMENT


def test_roles_decide_who_writes_and_reads_batches(world: World) -> None:
    alice, carol, mallory = world["alice"], world["carol"], world["mallory"]
    data = os.urandom(40)
    blob = [(_digest(data), data)]
    # A viewer reads but does not write; a stranger does neither.
    assert code(lambda: _update(carol, TEAM, blob)) == grpc.StatusCode.PERMISSION_DENIED
    assert code(lambda: _update(mallory, TEAM, blob)) == grpc.StatusCode.PERMISSION_DENIED
    assert code(lambda: _update(alice, TEAM, blob)) == grpc.StatusCode.OK
    assert _read(carol, TEAM, [_digest(data)]) == [data]
    assert code(lambda: _read(mallory, TEAM, [_digest(data)])) == grpc.StatusCode.PERMISSION_DENIED
    no_key = Stubs(world.channel, "dpt_not-a-key")
    assert code(lambda: _read(no_key, TEAM, [_digest(data)])) == grpc.StatusCode.UNAUTHENTICATED


def test_a_registry_reader_reads_only_the_linked_manifests_blobs(world: World) -> None:
    bob, mallory = world["bob"], world["mallory"]
    linked, unlinked, other = b"linked bytes", b"unlinked bytes", os.urandom(30)
    bob.log(TEAM, "p", "m", {"w": linked, "x": b"second file"}, type_="model")
    bob.log(TEAM, "p", "m", {"w": unlinked}, type_="model")
    _update(bob, TEAM, [(_digest(other), other)])
    world.member("acme", "bob", "member")
    world.member("acme", "mallory", "viewer")
    models = "entities/acme/registries/model"
    world.admin.SetRegistryMember(pb.SetRegistryMemberRequest(registry=models, user="entities/bob", role="member"))
    bob.LinkArtifactVersion(
        pb.LinkArtifactVersionRequest(
            version=f"{TEAM_PROJECT}/artifacts/m/versions/v0", target=f"{models}/collections/c"
        )
    )
    v0 = bob.GetArtifactVersion(pb.GetArtifactVersionRequest(name=f"{TEAM_PROJECT}/artifacts/m/versions/v0"))
    v1 = bob.GetArtifactVersion(pb.GetArtifactVersionRequest(name=f"{TEAM_PROJECT}/artifacts/m/versions/v1"))
    wanted = [_digest(linked), _digest(b"second file")]
    assert _read(mallory, TEAM, wanted, v0.manifest_id) == [linked, b"second file"]
    # One blob outside the linked manifest refuses the whole call.
    for digests, manifest_id in (
        ([*wanted, _digest(other)], v0.manifest_id),
        ([_digest(unlinked)], v0.manifest_id),
        ([_digest(unlinked)], v1.manifest_id),  # v1 is not linked
        (wanted, ""),  # no manifest: no registry access
    ):
        assert code(lambda: _read(mallory, TEAM, digests, manifest_id)) == grpc.StatusCode.PERMISSION_DENIED


TEAM_PROJECT = f"entities/{TEAM}/projects/p"


def test_batches_on_each_backend(any_server: ServerThread) -> None:
    with grpc.insecure_channel(any_server.address, options=_BIG_MESSAGES) as ch:
        admin = Stubs(ch, any_server.admin_key)
        datas = [os.urandom(1000 + i) for i in range(200)]
        blobs = [(_digest(d), d) for d in datas]
        assert all(b.created for b in _update(admin, "team", blobs).blobs)
        assert not any(b.created for b in _update(admin, "team", blobs[:5]).blobs)
        assert _read(admin, "team", [d for d, _ in blobs]) == datas
        absent = _digest(b"absent")
        err = _error(lambda: _read(admin, "team", [blobs[0][0], absent]))
        assert err.code() == grpc.StatusCode.NOT_FOUND and "digests[1]" in (err.details() or "")
        big = [os.urandom(5 * MIB) for _ in range(2)]
        for b in big:
            admin.upload("team", b)
        err = _error(lambda: _read(admin, "team", [_digest(b) for b in big]))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
