"""A small world for the access tests: an org, two teams, users with roles and keys.

The ``world`` fixture (tests/conftest.py) builds one on a fresh server.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc

from depot.manifest.v1 import manifest_pb2 as mpb
from depot.metadata.v1 import metadata_pb2 as pb
from support.stubs import Stubs, b64_xxh

OK = grpc.StatusCode.OK
TEAM = "team-a"
PROJECT = f"entities/{TEAM}/projects/p"
COLL = f"{PROJECT}/artifacts/ds"


# Which family's stub serves each metadata RPC, so tests call ``m.Rpc``.
_FAMILY = {
    method.name: attr
    for service, attr in (
        ("ArtifactService", "artifacts"),
        ("RegistryService", "registries"),
        ("AccessService", "access"),
        ("LineageService", "lineage"),
    )
    for method in pb.DESCRIPTOR.services_by_name[service].methods
}


class Meta(Stubs):
    """Generated stubs with one user's key; ``m.Rpc(request)`` calls with auth."""

    def __init__(self, channel: grpc.Channel, key: str):
        super().__init__(channel, key)
        self.key = key

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(getattr(self, _FAMILY[name]), name)
        return lambda req, **kw: method(req, metadata=self.md, **kw)


def code(fn: Callable[[], Any]) -> grpc.StatusCode:
    """The status of calling ``fn``: OK, or the error's code."""
    try:
        fn()
    except grpc.RpcError as e:
        return e.code()  # type: ignore[attr-defined, no-any-return]
    return OK


def rid() -> str:
    return uuid.uuid4().hex


@dataclass
class World:
    channel: grpc.Channel
    admin: Meta
    users: dict[str, Meta] = field(default_factory=dict)

    def __getitem__(self, user: str) -> Meta:
        return self.users[user]

    def user(self, name: str, org: str = "") -> Meta:
        self.admin.CreateEntity(pb.CreateEntityRequest(entity_id=name, entity=pb.Entity(kind="user", org=org)))
        key = self.admin.CreateApiKey(pb.CreateApiKeyRequest(user=f"entities/{name}")).key
        self.users[name] = Meta(self.channel, key)
        return self.users[name]

    def member(self, entity: str, user: str, role: str) -> None:
        self.admin.SetMember(pb.SetMemberRequest(entity=f"entities/{entity}", user=f"entities/{user}", role=role))


def build_world(channel: grpc.Channel, admin_key: str) -> World:
    """Org `acme` with team `team-a` (alice admin, bob member, carol viewer),
    team `team-b` (dave member), `erin` a user of the org `acme` with no team
    role (so team admins may add her), and `mallory` with no role anywhere."""
    w = World(channel, Meta(channel, admin_key))
    w.admin.CreateEntity(pb.CreateEntityRequest(entity_id="acme", entity=pb.Entity(kind="org")))
    for team in ("team-a", "team-b"):
        w.admin.CreateEntity(pb.CreateEntityRequest(entity_id=team, entity=pb.Entity(kind="team", org="entities/acme")))
    for name in ("alice", "bob", "carol", "dave", "mallory"):
        w.user(name)
    w.user("erin", org="entities/acme")
    w.member(TEAM, "alice", "admin")
    w.member(TEAM, "bob", "member")
    w.member(TEAM, "carol", "viewer")
    w.member("team-b", "dave", "member")
    return w


def log_version(m: Meta, parent: str, name: str, run: str, data: bytes) -> pb.ArtifactVersion:
    """Logs one version of ``name`` holding a single file ``f`` with ``data``, in ``run``."""
    entity = parent.split("/")[1]
    ref = m.put_manifest(
        entity,
        [mpb.ManifestEntry(path="f", algorithm="xxh3_128", digest=b64_xxh(data), size=len(data), content=data)],
    )
    return m.CreateArtifactVersion(
        pb.CreateArtifactVersionRequest(
            parent=parent,
            artifact=name,
            type="model",
            run=run,
            manifest=ref,
            request_id=rid(),
        )
    )
