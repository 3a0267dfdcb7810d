"""TTL validation and who may set it; the lineage graph walk, paged and access-filtered."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import asyncpg
import grpc
import pytest
from google.protobuf import duration_pb2, field_mask_pb2
from support.world import COLL, OK, PROJECT, TEAM, Meta, World, code

import depot
from depot.metadata.v1 import metadata_pb2 as pb
from depot.services.gc.collector import Collector
from depot.services.metadata import db


def _dur(seconds: float) -> duration_pb2.Duration:
    d = duration_pb2.Duration()
    d.FromTimedelta(timedelta(seconds=seconds))
    return d


def _set_ttl(m: Meta, mode: int, seconds: float | None = None, ref: str = "v0") -> pb.ArtifactVersion:
    v = pb.ArtifactVersion(name=f"{COLL}/versions/{ref}", ttl_mode=mode)
    if seconds is not None:
        v.ttl.CopyFrom(_dur(seconds))
    return m.UpdateArtifactVersion(
        pb.UpdateArtifactVersionRequest(version=v, update_mask=field_mask_pb2.FieldMask(paths=["ttl"]))
    )


def _settings(m: Meta, **kw: object) -> pb.Entity:
    s = pb.EntitySettings(**kw)  # type: ignore[arg-type]
    return m.UpdateEntitySettings(
        pb.UpdateEntitySettingsRequest(
            name=f"entities/{TEAM}", settings=s, update_mask=field_mask_pb2.FieldMask(paths=list(kw))
        )
    )


def test_ttl_validation_modes_and_team_policy(world: World) -> None:
    bob, alice, carol = world["bob"], world["alice"], world["carol"]
    v = bob.log(TEAM, "p", "ds", {"f": b"1"})
    assert v.ttl_mode == pb.TTL_MODE_INHERIT and not v.HasField("expire_time")
    for bad in (0.5, 0, -5):
        assert code(lambda: _set_ttl(bob, pb.TTL_MODE_DURATION, bad)) == grpc.StatusCode.INVALID_ARGUMENT
        req = pb.CreateArtifactVersionRequest(parent=PROJECT, artifact="x", type="t", ttl=_dur(bad))
        assert code(lambda: bob.CreateArtifactVersion(req)) == grpc.StatusCode.INVALID_ARGUMENT
    assert code(lambda: _set_ttl(bob, pb.TTL_MODE_DURATION)) == grpc.StatusCode.INVALID_ARGUMENT
    assert code(lambda: _set_ttl(bob, pb.TTL_MODE_FOREVER, 5)) == grpc.StatusCode.INVALID_ARGUMENT
    got = _set_ttl(bob, pb.TTL_MODE_DURATION, 3600)
    assert got.ttl.ToTimedelta() == timedelta(hours=1) and got.HasField("expire_time")
    assert _set_ttl(bob, pb.TTL_MODE_FOREVER).ttl_mode == pb.TTL_MODE_FOREVER
    assert code(lambda: _set_ttl(carol, pb.TTL_MODE_FOREVER)) == grpc.StatusCode.PERMISSION_DENIED
    # Team settings: admins only.
    assert code(lambda: _settings(bob, default_ttl=_dur(60))) == grpc.StatusCode.PERMISSION_DENIED
    assert code(lambda: _settings(alice, default_ttl=_dur(0.2))) == grpc.StatusCode.INVALID_ARGUMENT
    e = _settings(alice, default_ttl=_dur(86400), ttl_policy=pb.TTL_POLICY_ADMINS)
    assert e.settings.default_ttl.ToTimedelta() == timedelta(days=1)
    # Inheriting follows the team default; only admins may choose a TTL now.
    assert _set_ttl(alice, pb.TTL_MODE_INHERIT).ttl.ToTimedelta() == timedelta(days=1)
    assert code(lambda: _set_ttl(bob, pb.TTL_MODE_DURATION, 60)) == grpc.StatusCode.PERMISSION_DENIED
    req = pb.CreateArtifactVersionRequest(parent=PROJECT, artifact="y", type="t", ttl=_dur(60))
    assert code(lambda: bob.CreateArtifactVersion(req)) == grpc.StatusCode.PERMISSION_DENIED
    # Logging with the default (inherit) stays open to members.
    assert bob.log(TEAM, "p", "ds", {"f": b"2"}).ttl.ToTimedelta() == timedelta(days=1)
    assert _set_ttl(alice, pb.TTL_MODE_DURATION, 60).ttl.ToTimedelta() == timedelta(minutes=1)


def test_expiry_honours_inherit_and_links(world: World, server) -> None:
    bob, alice = world["bob"], world["alice"]
    for i in range(3):
        bob.log(TEAM, "p", "m", {"w": bytes([i])}, type_="model")
    m = f"{PROJECT}/artifacts/m"
    for ref in ("v0", "v1", "v2"):
        v = pb.ArtifactVersion(name=f"{m}/versions/{ref}", ttl_mode=pb.TTL_MODE_INHERIT)
        bob.UpdateArtifactVersion(
            pb.UpdateArtifactVersionRequest(version=v, update_mask=field_mask_pb2.FieldMask(paths=["ttl"]))
        )
    _settings(alice, default_ttl=_dur(1))
    world.member("acme", "bob", "member")
    world.admin.SetRegistryMember(
        pb.SetRegistryMemberRequest(registry="entities/acme/registries/model", user="entities/bob", role="member")
    )
    bob.LinkArtifactVersion(
        pb.LinkArtifactVersionRequest(
            version=f"{m}/versions/v1", target="entities/acme/registries/model/collections/keep"
        )
    )
    assert not bob.GetArtifactVersion(pb.GetArtifactVersionRequest(name=f"{m}/versions/v1")).HasField("expire_time")

    async def collect() -> int:
        conn = await asyncpg.connect(server.config.database_url)
        await conn.execute("UPDATE versions SET commit_time = commit_time - interval '1 hour'")
        await conn.close()
        pool = await db.create_pool(server.config.database_url, min_size=1, max_size=2)
        try:
            return (await Collector(pool).run("", force=True)).versions_expired
        finally:
            await pool.close()

    assert asyncio.run(collect()) == 2
    get = lambda ref: bob.GetArtifactVersion(pb.GetArtifactVersionRequest(name=f"{m}/versions/{ref}"))  # noqa: E731
    assert get("v1").linked
    assert code(lambda: get("v0")) == grpc.StatusCode.NOT_FOUND
    assert code(lambda: get("v2")) == grpc.StatusCode.NOT_FOUND


def test_sdk_ttl(world: World, server, tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    kw = {"address": server.address, "api_key": world["bob"].key}
    with depot.init(entity=TEAM, project="p", **kw) as run:
        art = depot.Artifact("ds", type="dataset")
        assert art.ttl is depot.ArtifactTTL.INHERIT
        with pytest.raises(depot.InvalidArgumentError):
            art.ttl = timedelta(milliseconds=500)
        with pytest.raises(depot.InvalidArgumentError):
            art.ttl = timedelta(seconds=-1)
        art.ttl = timedelta(days=2)
        art.add_file(tmp_path / "f")
        run.log_artifact(art).wait()
        assert art.ttl == timedelta(days=2)
        assert timedelta(days=1, hours=23) < art.ttl_remaining <= timedelta(days=2)
        art.ttl = None
        assert art.ttl is None and art.ttl_remaining is None
        assert depot.Api(**kw).artifact(f"{TEAM}/p/ds:v0").ttl is None
    _settings(world["alice"], ttl_policy=pb.TTL_POLICY_ADMINS)
    with pytest.raises(depot.PermissionDeniedError, match="only admins"):
        art.ttl = timedelta(days=1)


def test_lineage_walk(world: World, server, tmp_path: Path) -> None:
    """raw -> prep -> clean -> train(x2 outputs) ; clean also used by eval."""
    bob = world["bob"]
    kw = {"address": server.address, "api_key": bob.key}

    def art(name: str, data: str) -> depot.Artifact:
        (tmp_path / name).write_text(data)
        a = depot.Artifact(name, type="dataset")
        a.add_file(tmp_path / name)
        return a

    with depot.init(entity=TEAM, project="p", job_type="ingest", name="ingest", **kw) as r0:
        raw = r0.log_artifact(art("raw", "r")).wait()
    with depot.init(entity=TEAM, project="p", job_type="prep", name="prep", **kw) as r1:
        r1.use_artifact("raw:latest")
        clean = r1.log_artifact(art("clean", "c")).wait()
    with depot.init(entity=TEAM, project="p", job_type="train", name="train", **kw) as r2:
        r2.use_artifact("clean:latest")
        r2.log_artifact(art("model", "m")).wait()
        r2.log_artifact(art("metrics", "x")).wait()
        assert sorted(a.name for a in r2.logged_artifacts()) == ["metrics", "model"]
        assert [a.name for a in r2.used_artifacts()] == ["clean"]
    with depot.init(entity=TEAM, project="p", job_type="eval", name="eval", **kw) as r3:
        r3.use_artifact("clean:v0")

    assert clean.logged_by().id == "prep"
    assert sorted(r.id for r in clean.used_by()) == ["eval", "train"]
    assert raw.logged_by().logged_artifacts()[0].name == "raw"

    start = f"{PROJECT}/artifacts/raw/versions/v0"
    down = bob.WalkLineage(pb.WalkLineageRequest(start=start, direction=pb.DIRECTION_DOWNSTREAM, depth=10))
    got = [(n.depth, n.name.rsplit("/", 3)[-3 if n.HasField("version") else -1]) for n in down.nodes]
    assert got == [(1, "prep"), (2, "clean"), (3, "train"), (3, "eval"), (4, "model"), (4, "metrics")]
    kinds = {(e.source.split("/")[-1], e.target.split("/")[-1], e.kind) for e in down.edges}
    assert ("v0", "prep", "used") in kinds and ("prep", "v0", "logged") in kinds
    # Depth limits, pages concatenate to the same walk, tokens are bound to the walk.
    two = bob.WalkLineage(pb.WalkLineageRequest(start=start, direction=pb.DIRECTION_DOWNSTREAM, depth=2))
    assert len(two.nodes) == 2
    seen, token = [], ""
    while True:
        page = bob.WalkLineage(
            pb.WalkLineageRequest(
                start=start, direction=pb.DIRECTION_DOWNSTREAM, depth=10, page_size=2, page_token=token
            )
        )
        seen += [n.name for n in page.nodes]
        token = page.next_page_token
        if not token:
            break
        foreign = pb.WalkLineageRequest(start=start, direction=pb.DIRECTION_UPSTREAM, page_token=token)
        assert code(lambda: bob.WalkLineage(foreign)) == grpc.StatusCode.INVALID_ARGUMENT
    assert seen == [n.name for n in down.nodes]
    up = bob.WalkLineage(pb.WalkLineageRequest(start=f"{PROJECT}/runs/train", direction=pb.DIRECTION_UPSTREAM, depth=3))
    assert [n.name.split("/")[-1] for n in up.nodes] == ["v0", "prep", "v0"]
    for bad in (
        pb.WalkLineageRequest(start=start, direction=pb.DIRECTION_UPSTREAM, depth=101),
        pb.WalkLineageRequest(start=start),
    ):
        assert code(lambda: bob.WalkLineage(bad)) == grpc.StatusCode.INVALID_ARGUMENT
    # Another team's consumer is invisible to team-a members.
    dave = world["dave"]
    world.member(TEAM, "dave", "viewer")
    dave.CreateRun(pb.CreateRunRequest(parent="entities/team-b/projects/q", run_id="spy"))
    dave.UseArtifactVersion(pb.UseArtifactVersionRequest(run="entities/team-b/projects/q/runs/spy", version=start))
    after = bob.WalkLineage(pb.WalkLineageRequest(start=start, direction=pb.DIRECTION_DOWNSTREAM))
    assert [n.name.split("/")[-1] for n in after.nodes] == ["prep"]
    mine = dave.WalkLineage(pb.WalkLineageRequest(start=start, direction=pb.DIRECTION_DOWNSTREAM))
    assert sorted(n.name.split("/")[-1] for n in mine.nodes) == ["prep", "spy"]
    assert code(
        lambda: world["mallory"].WalkLineage(pb.WalkLineageRequest(start=start, direction=pb.DIRECTION_DOWNSTREAM))
    ) == (grpc.StatusCode.PERMISSION_DENIED)
    assert OK
