"""ReadManifest's filters keep its authorization, and a manifest on S3 is fetched once, not per read."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from support.servers import ServerThread
from support.stubs import Stubs, b64_xxh
from support.world import PROJECT, World, code

from depot._client import Client
from depot._manifest_read import iter_entries
from depot.manifest.v1 import manifest_pb2 as mpb
from depot.metadata.v1 import metadata_pb2 as pb

MODELS = "entities/acme/registries/model"


def _requests(manifest_id: str) -> list[mpb.ReadManifestRequest]:
    return [
        mpb.ReadManifestRequest(entity="team-a", manifest_id=manifest_id, prefix="w"),
        mpb.ReadManifestRequest(entity="team-a", manifest_id=manifest_id, names=["w"]),
        mpb.ReadManifestRequest(entity="team-a", manifest_id=manifest_id, raw_blocks=True, start_after="a"),
    ]


def test_registry_reader_reads_only_the_linked_manifest_with_any_filter(world: World) -> None:
    bob, mallory = world["bob"], world["mallory"]
    bob.log("team-a", "p", "m", {"w": b"0"}, type_="model")
    bob.log("team-a", "p", "m", {"w": b"1"}, type_="model")
    world.member("acme", "bob", "member")
    world.member("acme", "mallory", "viewer")
    world.admin.SetRegistryMember(pb.SetRegistryMemberRequest(registry=MODELS, user="entities/bob", role="member"))
    bob.LinkArtifactVersion(
        pb.LinkArtifactVersionRequest(version=f"{PROJECT}/artifacts/m/versions/v1", target=f"{MODELS}/collections/x")
    )
    v0, v1 = (
        bob.GetArtifactVersion(pb.GetArtifactVersionRequest(name=f"{PROJECT}/artifacts/m/versions/v{i}"))
        for i in (0, 1)
    )
    for req in _requests(v1.manifest_id):
        batches = list(mallory.man.ReadManifest(req, metadata=mallory.md))
        assert batches and (batches[0].entries or batches[0].blocks)
    for req in _requests(v0.manifest_id):
        assert code(lambda req=req: list(mallory.man.ReadManifest(req, metadata=mallory.md))) == (
            grpc.StatusCode.PERMISSION_DENIED
        )
    # dave has a role on team-b only.
    assert code(
        lambda: list(world["dave"].man.ReadManifest(_requests(v1.manifest_id)[0], metadata=world["dave"].md))
    ) == (grpc.StatusCode.PERMISSION_DENIED)


@pytest.mark.parametrize("any_server", ["s3"], indirect=True)
def test_s3_manifest_is_staged_once_for_many_reads(any_server: ServerThread) -> None:
    channel = grpc.insecure_channel(any_server.address)
    stubs = Stubs(channel, any_server.admin_key)
    files = {f"d/{i:03d}": bytes([i]) for i in range(20)}
    entries = [
        mpb.ManifestEntry(path=p, algorithm="xxh3_128", digest=b64_xxh(d), size=1, content=d) for p, d in files.items()
    ]
    ref = stubs.put_manifest("team", entries)
    channel.close()
    staging = Path(any_server.config.manifest.staging_dir)
    client = Client(any_server.address, any_server.admin_key)
    try:
        for name in ("d/000", "d/019", "d/007", "nope"):
            got = [e.path for b in iter_entries(client, "team", ref.manifest_id, names=[name]) for e in b]
            assert got == ([name] if name in files else [])
        assert [e.path for b in iter_entries(client, "team", ref.manifest_id, prefix="d") for e in b] == sorted(files)
    finally:
        client.close()
    # One local copy serves every read.
    assert len(list(staging.glob("manifest-read-*"))) == 1
