"""Aliases and tags on committed versions, filtered listing, and commits under contention."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import random
from datetime import UTC, datetime, timedelta

import asyncpg
import grpc
from google.protobuf import field_mask_pb2, timestamp_pb2
from support.world import COLL, OK, PROJECT, Meta, World, code

from depot.metadata.v1 import metadata_pb2 as pb


def _v(m: Meta, ref: str, coll: str = COLL) -> pb.ArtifactVersion:
    return m.GetArtifactVersion(pb.GetArtifactVersionRequest(name=f"{coll}/versions/{ref}"))


def test_add_move_remove_aliases(world: World) -> None:
    bob = world["bob"]
    for i in range(3):
        bob.log("team-a", "p", "ds", {"f": bytes([i])})
    bob.AddAliases(pb.AddAliasesRequest(version=f"{COLL}/versions/v0", aliases=["prod", "best"]))
    assert _v(bob, "prod").index == 0
    # Moving is one step: prod now names v2 and v0 has only `best`.
    moved = bob.AddAliases(pb.AddAliasesRequest(version=f"{COLL}/versions/v2", aliases=["prod"]))
    assert sorted(moved.aliases) == ["latest", "prod"]
    assert _v(bob, "v0").aliases == ["best"]
    # By alias too.
    bob.AddAliases(pb.AddAliasesRequest(version=f"{COLL}/versions/best", aliases=["gold"]))
    assert _v(bob, "gold").index == 0
    removed = bob.RemoveAliases(pb.RemoveAliasesRequest(version=f"{COLL}/versions/v0", aliases=["best", "gold"]))
    assert removed.aliases == []
    # Removing what the version does not have changes nothing (all or nothing).
    req = pb.RemoveAliasesRequest(version=f"{COLL}/versions/v2", aliases=["prod", "nope"])
    assert code(lambda: bob.RemoveAliases(req)) == grpc.StatusCode.NOT_FOUND
    assert "prod" in _v(bob, "v2").aliases
    # latest and vN are reserved.
    for alias in ("latest", "v7", "bad alias"):
        req = pb.AddAliasesRequest(version=f"{COLL}/versions/v0", aliases=[alias])
        assert code(lambda: bob.AddAliases(req)) == grpc.StatusCode.INVALID_ARGUMENT
    req = pb.RemoveAliasesRequest(version=f"{COLL}/versions/v2", aliases=["latest"])
    assert code(lambda: bob.RemoveAliases(req)) == grpc.StatusCode.INVALID_ARGUMENT
    missing = pb.AddAliasesRequest(version=f"{COLL}/versions/v9", aliases=["x"])
    assert code(lambda: bob.AddAliases(missing)) == grpc.StatusCode.NOT_FOUND
    aliases = bob.ListAliases(pb.ListAliasesRequest(parent=COLL)).aliases
    assert [(a.alias, a.index) for a in aliases] == [("latest", 2), ("prod", 2)]
    # Viewers may not.
    carol = world["carol"]
    req = pb.AddAliasesRequest(version=f"{COLL}/versions/v0", aliases=["x"])
    assert code(lambda: carol.AddAliases(req)) == grpc.StatusCode.PERMISSION_DENIED


def test_tags_metadata_description_and_filters(world: World) -> None:
    bob = world["bob"]
    t0 = datetime.now(UTC) - timedelta(seconds=1)
    for i in range(4):
        pending = bob.CreateArtifactVersion(
            pb.CreateArtifactVersionRequest(
                parent=PROJECT,
                artifact="ds",
                type="dataset",
                tags=["even" if i % 2 else "odd"],
                metadata_json=json.dumps({"i": i, "split": "train" if i < 2 else "test"}),
            )
        )
        ref = bob.manifest("team-a", [])
        if i == 0:
            v0 = bob.commit(pending.uid, ref, [])
        else:
            # Empty manifests share a digest; give each its own content instead.
            bob.log("team-a", "p", "ds", {"f": bytes([i])})
    assert v0.tags == ["odd"]
    upd = bob.UpdateArtifactVersion(
        pb.UpdateArtifactVersionRequest(
            version=pb.ArtifactVersion(
                name=f"{COLL}/versions/v0",
                tags=["gold", "odd"],
                description="first",
                metadata_json='{"split": "train", "score": 0.5}',
            ),
            update_mask=field_mask_pb2.FieldMask(paths=["tags", "description", "metadata_json"]),
        )
    )
    assert (upd.tags, upd.description) == (["gold", "odd"], "first")

    def listed(**kw: object) -> list[int]:
        resp = bob.ListArtifactVersions(pb.ListArtifactVersionsRequest(parent=COLL, **kw))
        return [v.index for v in resp.versions]

    assert listed() == [3, 2, 1, 0]
    assert listed(tag="gold") == [0]
    assert listed(alias="latest") == [3]
    assert listed(metadata_key="split", metadata_value_json='"train"') == [0]
    assert listed(metadata_key="score", metadata_value_json="0.5") == [0]
    after = timestamp_pb2.Timestamp()
    after.FromDatetime(t0)
    assert listed(created_after=after) == [3, 2, 1, 0]
    before = timestamp_pb2.Timestamp()
    before.FromDatetime(t0)
    assert listed(created_before=before) == []
    # Filters combine with AND, in any combination.
    assert listed(tag="gold", alias="latest") == []
    assert listed(tag="gold", created_after=after, metadata_key="split", metadata_value_json='"train"') == [0]
    assert listed(alias="latest", created_after=after) == [3]
    bad = pb.ListArtifactVersionsRequest(parent=COLL, metadata_key="x", metadata_value_json="{")
    assert code(lambda: bob.ListArtifactVersions(bad)) == grpc.StatusCode.INVALID_ARGUMENT
    bad_mask = pb.UpdateArtifactVersionRequest(
        version=pb.ArtifactVersion(name=f"{COLL}/versions/v0"),
        update_mask=field_mask_pb2.FieldMask(paths=["digest"]),
    )
    assert code(lambda: bob.UpdateArtifactVersion(bad_mask)) == grpc.StatusCode.INVALID_ARGUMENT
    big = pb.UpdateArtifactVersionRequest(
        version=pb.ArtifactVersion(name=f"{COLL}/versions/v0", tags=["bad tag"]),
        update_mask=field_mask_pb2.FieldMask(paths=["tags"]),
    )
    assert code(lambda: bob.UpdateArtifactVersion(big)) == grpc.StatusCode.INVALID_ARGUMENT


def test_listings_page_and_reject_foreign_tokens(world: World) -> None:
    bob = world["bob"]
    for name, type_ in (("a", "dataset"), ("b", "model"), ("c", "dataset")):
        bob.log("team-a", "p", name, {"f": name.encode()}, type_=type_)
    bob.log("team-a", "q", "z", {"f": b"z"})
    projects = bob.ListProjects(pb.ListProjectsRequest(parent="entities/team-a"))
    assert [p.name for p in projects.projects] == [PROJECT, "entities/team-a/projects/q"]
    page = bob.ListCollections(pb.ListCollectionsRequest(parent=PROJECT, type="dataset", page_size=1))
    assert [c.name.rsplit("/", 1)[1] for c in page.collections] == ["a"]
    page2 = bob.ListCollections(
        pb.ListCollectionsRequest(parent=PROJECT, type="dataset", page_token=page.next_page_token)
    )
    assert [c.name.rsplit("/", 1)[1] for c in page2.collections] == ["c"]
    assert page2.collections[0].version_count == 1 and not page2.next_page_token
    # The token of one listing is no good for another (other filter, parent or method).
    for req, rpc in (
        (pb.ListCollectionsRequest(parent=PROJECT, type="model", page_token=page.next_page_token), bob.ListCollections),
        (
            pb.ListCollectionsRequest(parent="entities/team-a/projects/q", page_token=page.next_page_token),
            bob.ListCollections,
        ),
        (pb.ListProjectsRequest(parent="entities/team-a", page_token=page.next_page_token), bob.ListProjects),
        (pb.ListRunsRequest(parent=PROJECT, page_token="garbage!"), bob.ListRuns),
        (pb.ListRunsRequest(parent=PROJECT, page_size=-1), bob.ListRuns),
    ):
        assert code(lambda: rpc(req)) == grpc.StatusCode.INVALID_ARGUMENT, req
    for i in range(3):
        bob.CreateRun(pb.CreateRunRequest(parent=PROJECT, run_id=f"r{i}"))
    seen, token = [], ""
    while True:
        runs = bob.ListRuns(pb.ListRunsRequest(parent=PROJECT, page_size=2, page_token=token))
        seen += [r.name.rsplit("/", 1)[1] for r in runs.runs]
        token = runs.next_page_token
        if not token:
            break
    assert seen == ["r2", "r1", "r0"]


def test_token_is_stable_under_concurrent_inserts(world: World) -> None:
    bob = world["bob"]
    for i in range(4):
        bob.log("team-a", "p", "ds", {"f": bytes([i])})
    first = bob.ListArtifactVersions(pb.ListArtifactVersionsRequest(parent=COLL, page_size=2))
    bob.log("team-a", "p", "ds", {"f": b"new"})
    rest = bob.ListArtifactVersions(pb.ListArtifactVersionsRequest(parent=COLL, page_token=first.next_page_token))
    assert [v.index for v in first.versions] + [v.index for v in rest.versions] == [3, 2, 1, 0]


def test_64_writers_many_commits_few_collections(world: World, server) -> None:
    """No duplicate or missing index, each alias names one committed version, latest is the max."""
    bob = world["bob"]
    colls = ["c0", "c1", "c2"]
    per_writer = 4

    def writer(w: int) -> list[tuple[str, int]]:
        rnd = random.Random(w)
        m = Meta(world.channel, bob.key)
        out = []
        for i in range(per_writer):
            c = rnd.choice(colls)
            alias = rnd.choice(["prod", "staging", "best"])
            v = m.log("team-a", "p", c, {"f": f"{w}-{i}".encode()}, aliases=[alias])
            out.append((c, v.index))
            if rnd.random() < 0.3:
                m.AddAliases(
                    pb.AddAliasesRequest(version=f"{PROJECT}/artifacts/{c}/versions/latest", aliases=["moved"])
                )
        return out

    with concurrent.futures.ThreadPoolExecutor(64) as pool:
        results = [x for r in pool.map(writer, range(64)) for x in r]
    assert len(results) == 64 * per_writer
    for c in colls:
        got = sorted(i for cc, i in results if cc == c)
        assert got == list(range(len(got))), f"{c}: gaps or duplicates"
        assert _v(bob, "latest", f"{PROJECT}/artifacts/{c}").index == len(got) - 1

    async def check_aliases() -> None:
        conn = await asyncpg.connect(server.config.database_url)
        try:
            rows = await conn.fetch(
                """
                SELECT c.name, a.alias, count(*) AS n, bool_and(v.collection_id = c.id) AS same,
                       bool_and(v.state = 'committed') AS live
                FROM aliases a JOIN collections c ON c.id = a.collection_id
                JOIN versions v ON v.id = a.version_id GROUP BY 1, 2
                """
            )
            assert rows and all(r["n"] == 1 and r["same"] and r["live"] for r in rows)
            pending = await conn.fetchval("SELECT count(*) FROM versions WHERE state = 'pending'")
            assert pending == 0
        finally:
            await conn.close()

    asyncio.run(check_aliases())
    assert code(lambda: _v(bob, "latest", f"{PROJECT}/artifacts/c0")) == OK
