"""Bounds the manifest service enforces at the edge, against a real server:
entry field lengths, included manifests, a reference's max_objects and the
size of a registry reader's BatchReadBlobs, each refused naming the field."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from support.servers import ServerThread
from support.stubs import Stubs, b64_xxh
from support.world import TEAM, World, code

from depot.manifest.v1 import manifest_pb2 as mpb
from depot.metadata.v1 import metadata_pb2 as pb


@pytest.fixture
def admin(server: ServerThread) -> Iterator[Stubs]:
    with grpc.insecure_channel(server.address) as ch:
        yield Stubs(ch, server.admin_key)


def _error(fn: object) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        fn()  # type: ignore[operator]
    return info.value


def _field(err: grpc.RpcError) -> str:
    """The field the AIP-193 ErrorInfo names."""
    from google.rpc import error_details_pb2, status_pb2

    trailers = dict(err.trailing_metadata() or ())  # type: ignore[attr-defined]
    status = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    return str(info.metadata["field"])


def _put(admin: Stubs, header: mpb.ManifestHeader, entries: list[mpb.ManifestEntry] | None = None) -> object:
    return admin.man.PutManifest(mpb.PutManifestRequest(header=header, entries=entries or []), metadata=admin.md)


def _ref_entry(**fields: str) -> mpb.ManifestEntry:
    base = {"path": "f", "algorithm": "etag", "digest": "abc", "ref": "s3://b/k", "version_id": ""}
    return mpb.ManifestEntry(size=1, **{**base, **fields})


@pytest.mark.parametrize("field", ["ref", "version_id", "digest"])
def test_an_overlong_entry_field_is_refused_naming_it(admin: Stubs, field: str) -> None:
    header = mpb.ManifestHeader(entity="team", digest_algorithm="md5")
    long = "x" * 4097 if field != "ref" else "s3://b/" + "k" * 4090
    err = _error(lambda: _put(admin, header, [_ref_entry(**{field: long})]))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and _field(err) == f"entries[0].{field}"
    assert f"{field} is longer than 4096 bytes" in (err.details() or "")
    # At the limit it is accepted.
    ok = "y" * 4096 if field != "ref" else "s3://b/" + "k" * 4089
    assert _put(admin, header, [_ref_entry(**{field: ok})])


def test_included_manifests_are_bounded_and_deduplicated(admin: Stubs) -> None:
    header = mpb.ManifestHeader(entity="team", digest_algorithm="md5")
    one = _put(admin, header, [_ref_entry()])
    twice = mpb.ManifestHeader(entity="team", digest_algorithm="md5", include_manifests=[one.manifest_id] * 2)  # type: ignore[attr-defined]
    # Named twice, included once (not refused as a duplicate of every path).
    assert _put(admin, twice).manifest_id == one.manifest_id  # type: ignore[attr-defined]
    # Seventeen distinct ids are refused before any is fetched (none of these exists).
    many = mpb.ManifestHeader(entity="team", digest_algorithm="md5", include_manifests=[f"{i:064x}" for i in range(17)])
    err = _error(lambda: _put(admin, many))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "at most 16" in (err.details() or "")
    assert _field(err) == "header.include_manifests"


def test_max_objects_past_the_documented_maximum_is_refused(admin: Stubs) -> None:
    ref = mpb.Reference(uri="s3://bk/p/", max_objects=10_000_001)
    header = mpb.ManifestHeader(entity="team", digest_algorithm="md5", references=[ref])
    err = _error(lambda: _put(admin, header))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "max_objects" in (err.details() or "")
    assert _field(err) == "header.references[0].max_objects"


def test_a_registry_readers_oversized_batch_is_refused_before_any_lookup(world: World) -> None:
    bob, mallory = world["bob"], world["mallory"]
    bob.log(TEAM, "p", "m", {"w": b"linked"}, type_="model")
    world.member("acme", "bob", "member")
    world.member("acme", "mallory", "viewer")
    models = "entities/acme/registries/model"
    world.admin.SetRegistryMember(pb.SetRegistryMemberRequest(registry=models, user="entities/bob", role="member"))
    version = f"entities/{TEAM}/projects/p/artifacts/m/versions/v0"
    bob.LinkArtifactVersion(pb.LinkArtifactVersionRequest(version=version, target=f"{models}/collections/c"))
    v0 = bob.GetArtifactVersion(pb.GetArtifactVersionRequest(name=version))
    # 1001 digests, none in the manifest: the count decides, not the first digest's lookup.
    digests = [mpb.BlobDigest(algorithm="xxh3_128", digest=b64_xxh(str(i).encode())) for i in range(1001)]
    req = mpb.BatchReadBlobsRequest(entity=TEAM, digests=digests, manifest_id=v0.manifest_id)
    assert code(lambda: mallory.man.BatchReadBlobs(req, metadata=mallory.md)) == grpc.StatusCode.INVALID_ARGUMENT
    req = mpb.BatchReadBlobsRequest(
        entity=TEAM,
        digests=[mpb.BlobDigest(algorithm="xxh3_128", digest=b64_xxh(b"linked"))],
        manifest_id=v0.manifest_id,
    )
    assert [b.data for b in mallory.man.BatchReadBlobs(req, metadata=mallory.md).blobs] == [b"linked"]
