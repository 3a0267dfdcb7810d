"""A refused CreateArtifactVersion leaves nothing behind (issue 8, round 2, item 3).

The project of a first log used to be created (and committed) before the
TTL permission and the run were checked, so a member refused by the team's
``ttl_policy=admins`` still made the project. Every check runs before
anything is created, and creation shares the version's transaction.
"""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import field_mask_pb2
from google.rpc import error_details_pb2, status_pb2
from support.stubs import b64_xxh
from support.world import PROJECT, TEAM, Meta, World, code, rid

from depot.manifest.v1 import manifest_pb2 as mpb
from depot.metadata.v1 import metadata_pb2 as pb

NEW = f"entities/{TEAM}/projects/np8"


def _refusal(fn: object) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as e:
        fn()  # type: ignore[operator]
    trailers = dict(e.value.trailing_metadata())  # type: ignore[attr-defined]
    info = error_details_pb2.ErrorInfo()
    status_pb2.Status.FromString(trailers["grpc-status-details-bin"]).details[0].Unpack(info)
    return e.value.code(), info.reason  # type: ignore[attr-defined]


def _projects(m: Meta) -> list[str]:
    return [p.name for p in m.ListProjects(pb.ListProjectsRequest(parent=f"entities/{TEAM}")).projects]


def _admins_only(world: World) -> None:
    world["alice"].UpdateEntitySettings(
        pb.UpdateEntitySettingsRequest(
            name=f"entities/{TEAM}",
            settings=pb.EntitySettings(ttl_policy=pb.TTL_POLICY_ADMINS),
            update_mask=field_mask_pb2.FieldMask(paths=["ttl_policy"]),
        )
    )


@pytest.mark.parametrize("request_id", ["", "with-id"])
@pytest.mark.parametrize("committed", [False, True], ids=["pending", "committed"])
def test_a_ttl_refused_by_the_team_policy_creates_no_project(world: World, request_id: str, committed: bool) -> None:
    _admins_only(world)
    bob = world["bob"]
    req = pb.CreateArtifactVersionRequest(
        parent=NEW,
        artifact="ds",
        type="dataset",
        ttl_mode=pb.TTL_MODE_FOREVER,
        request_id=rid() if request_id else "",
    )
    if committed:
        data = b"x"
        ref = bob.put_manifest(
            TEAM, [mpb.ManifestEntry(path="f", algorithm="xxh3_128", digest=b64_xxh(data), size=1, content=data)]
        )
        req.manifest.CopyFrom(ref)
    assert _refusal(lambda: bob.CreateArtifactVersion(req)) == (grpc.StatusCode.PERMISSION_DENIED, "TTL_ADMINS_ONLY")
    assert NEW not in _projects(world["alice"])
    assert (
        code(lambda: world["alice"].ListArtifactVersions(pb.ListArtifactVersionsRequest(parent=f"{NEW}/artifacts/ds")))
        == grpc.StatusCode.NOT_FOUND
    )
    # Inheriting the team default is every member's right, and does create it.
    req.ttl_mode = pb.TTL_MODE_INHERIT
    req.request_id = rid() if request_id else ""
    assert bob.CreateArtifactVersion(req).name.startswith(f"{NEW}/artifacts/ds/versions/")
    assert NEW in _projects(world["alice"])


def test_a_run_of_another_project_creates_no_project(world: World) -> None:
    bob = world["bob"]
    bob.CreateRun(pb.CreateRunRequest(parent=PROJECT, run_id="r"))
    req = pb.CreateArtifactVersionRequest(parent=NEW, artifact="ds", type="dataset", run=f"{PROJECT}/runs/r")
    assert code(lambda: bob.CreateArtifactVersion(req)) == grpc.StatusCode.INVALID_ARGUMENT
    assert NEW not in _projects(world["alice"])
