"""W&B code runs on Depot by swapping the import: docs/wandb-compat.md, row by row.

``test_wandb_script`` is written with W&B's spellings only (``import depot as
wandb``; the address and key come from the environment, as W&B's do) and
exercises every supported row of the table against a real server; the other
tests pin the settled semantics and the rows that raise.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import pytest
from support.servers import ServerThread
from support.world import World

import depot
import depot as wandb
from depot.metadata.v1 import metadata_pb2 as pb


@pytest.fixture
def wb(world: World, server: ServerThread, monkeypatch: pytest.MonkeyPatch) -> World:
    """bob, a member of team-a and of the acme registry `model`, as W&B's environment would name him."""
    world.member("acme", "bob", "member")
    world.admin.SetRegistryMember(
        pb.SetRegistryMemberRequest(registry="entities/acme/registries/model", user="entities/bob", role="member")
    )
    monkeypatch.setenv("DEPOT_ADDRESS", server.address)
    monkeypatch.setenv("DEPOT_API_KEY", world["bob"].key)
    for var in ("DEPOT_ENTITY", "DEPOT_PROJECT", "DEPOT_ORG"):
        monkeypatch.delenv(var, raising=False)
    return world


def _files(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "train.csv").write_text("a,b\n1,2\n")
    (root / "sub").mkdir(exist_ok=True)
    (root / "sub" / "test.csv").write_text("a,b\n3,4\n")
    return root


def test_wandb_script(wb: World, tmp_path: Path) -> None:
    data = _files(tmp_path / "data")
    other = tmp_path / "other.csv"
    other.write_text("other\n")

    # -- log ---------------------------------------------------------------------
    with wandb.init(
        entity="team-a", project="p", job_type="prep", config={"lr": 0.1}, tags=["baseline"], id="prep-1"
    ) as run:
        assert run.id == "prep-1"
        art = wandb.Artifact("ds", type="model", description="first", metadata={"rows": 2})
        art.add_file(str(data / "train.csv"))
        art.add_file(str(data / "train.csv"))  # the same content again: no conflict, as in W&B
        with pytest.raises(ValueError, match="overwrite=True"):
            art.add_file(str(other), name="train.csv")
        art.add_file(str(other), name="train.csv", overwrite=True)
        art.add_dir(str(data / "sub"), name="sub")
        with art.new_file("notes.txt") as f:
            f.write("hello")
        art.add_file(str(other), name="gone.csv")
        art.remove("gone.csv")
        with pytest.raises(wandb.TooManyObjectsError):
            art.add_reference(data.as_uri(), name="refs", max_objects=1)
        assert sorted(e.path for e in art.files(per_page=10)) == ["notes.txt", "sub/test.csv", "train.csv"]
        art.ttl = timedelta(days=30)
        unlogged_digest = art.digest
        run.log_artifact(art, aliases=["latest", "best"], tags=["raw"])
        art.wait()
        assert art.version == "v0" and sorted(art.aliases) == ["best", "latest"]
        assert art.tags == ["raw"] and art.digest == unlogged_digest
        assert art.qualified_name == "team-a/p/ds:v0" and art.source_name == "ds:v0"
        assert art.metadata_applied is True and art.id and art.created_at.year >= 2024
        # A path logs as a new artifact named after the run, as W&B does.
        from_path = run.log_artifact(str(other), type="raw").wait()
        assert from_path.name == f"run-{run.id}-other.csv" and from_path.type == "raw"
        producer = run.id

    # -- use, download, verify -------------------------------------------------------
    with wandb.init(entity="team-a", project="p", job_type="train") as run:
        with pytest.raises(wandb.InvalidArgumentError, match="type"):
            run.use_artifact("ds:best", type="dataset")
        used = run.use_artifact("ds:best", type="model", aliases=["used"], use_as="weights")
        assert sorted(used.aliases) == ["best", "latest", "used"]
        root = Path(used.download(str(tmp_path / "dl")))
        assert (root / "train.csv").read_text() == "other\n"
        used.verify(str(root))
        (root / "extra.txt").write_text("x")
        assert (Path(used.checkout(str(root))) / "train.csv").exists() and not (root / "extra.txt").exists()
        only_sub = Path(used.download(str(tmp_path / "sub"), path_prefix="sub"))
        assert [p.name for p in only_sub.rglob("*") if p.is_file()] == ["test.csv"]
        assert used.get_entry("notes.txt").size == 5 and used.get_path("notes.txt").path == "notes.txt"
        assert Path(used.get_entry("sub/test.csv").download(str(tmp_path / "one"))).read_text() == "a,b\n3,4\n"
        assert used.size == sum(e.size for e in used.files())
        assert used.logged_by() is not None and used.logged_by().id == producer
        consumer = run.id
    assert [r.id for r in used.used_by()] == [consumer]

    # -- edit and save --------------------------------------------------------------------
    api = wandb.Api()
    a = api.artifact("team-a/p/ds:latest")
    a.description = "edited"
    a.metadata["rows"] = 3
    a.tags.append("clean")
    a.aliases.append("prod")
    a.aliases.remove("best")
    a.save()
    a.ttl = timedelta(days=7)  # sent at once
    again = api.artifact("team-a/p/ds:v0")
    assert (again.description, again.metadata, sorted(again.tags)) == ("edited", {"rows": 3}, ["clean", "raw"])
    assert sorted(again.aliases) == ["latest", "prod", "used"]
    assert again.ttl == timedelta(days=7)

    # -- link --------------------------------------------------------------------------
    with wandb.init(entity="team-a", project="p", job_type="release") as run:
        linked = run.link_artifact(again, "acme/wandb-registry-model/ds", aliases=["staging"])
    assert sorted(linked.aliases) == ["latest", "staging"]
    assert api.artifact("acme/wandb-registry-model/ds:staging").source_version == "team-a/p/ds:v0"
    linked.unlink()
    assert not api.artifact_exists("acme/wandb-registry-model/ds:staging")

    # -- the public API's listings --------------------------------------------------------
    assert [c.name for c in api.artifact_collections("team-a/p", "model")] == ["ds"]
    coll = api.artifact_collection("model", "team-a/p/ds")
    assert (coll.name, coll.type, coll.entity, coll.project) == ("ds", "model", "team-a", "p")
    assert "prod" in coll.aliases and [v.version for v in coll.artifacts()] == ["v0"]
    assert [v.version for v in api.artifacts("model", "team-a/p/ds")] == ["v0"]
    assert [v.version for v in api.artifacts("model", "team-a/p/ds", tags="clean")] == ["v0"]
    assert [v.version for v in api.artifact_versions("model", "team-a/p/ds")] == ["v0"]
    assert api.artifact_exists("team-a/p/ds:prod") and not api.artifact_exists("team-a/p/ds:v7")
    assert not api.artifact_exists("team-a/p/ds:prod", type="dataset")
    assert api.artifact_collection_exists("team-a/p/ds", "model")
    assert not api.artifact_collection_exists("team-a/p/ds", "dataset")
    assert [t.name for t in api.artifact_types("team-a/p")] == ["model", "raw"]
    assert [c.name for c in api.artifact_type("model", "team-a/p").collections()] == ["ds"]
    prep = api.run(f"team-a/p/{producer}")
    assert prep.job_type == "prep"
    assert sorted(x.name for x in prep.logged_artifacts()) == ["ds", "run-prep-1-other.csv"]

    # -- delete ------------------------------------------------------------------------
    with pytest.raises(wandb.FailedPreconditionError):
        again.delete()
    again.delete(delete_aliases=True)
    assert not api.artifact_exists("team-a/p/ds:prod")
    assert api.artifacts("model", "team-a/p/ds") == []


def test_dedup_returns_the_version_as_stored(wb: World, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    data = _files(tmp_path / "data")
    with wandb.init(entity="team-a", project="p") as run:
        first = wandb.Artifact("ds", "dataset", description="one", metadata={"v": 1})
        first.add_dir(str(data))
        run.log_artifact(first, tags=["a"]).wait()
        same = wandb.Artifact("ds", "dataset", description="two", metadata={"v": 2})
        same.add_dir(str(data))
        with caplog.at_level(logging.WARNING, logger="depot"):
            run.log_artifact(same, aliases=["again"], tags=["b"]).wait()
    # W&B's behaviour: no new version; the aliases are added, the rest is as stored.
    assert same.version == "v0" and same.metadata_applied is False
    assert (same.description, same.metadata, same.tags) == ("one", {"v": 1}, ["a"])
    assert sorted(same.aliases) == ["again", "latest"]
    assert "logged already as v0" in caplog.text
    # Editing and saving is how the existing version changes.
    same.metadata = {"v": 2}
    same.save()
    assert wandb.Api().artifact("team-a/p/ds:again").metadata == {"v": 2}


def test_incremental_builds_on_latest_without_uploading(wb: World, tmp_path: Path) -> None:
    data = _files(tmp_path / "data")
    extra = tmp_path / "extra.csv"
    extra.write_text("more\n")
    with wandb.init(entity="team-a", project="p") as run:
        base = wandb.Artifact("ds", "dataset")
        base.add_dir(str(data))
        run.log_artifact(base).wait()
        # The base's files may be gone: nothing of them is read or sent again.
        (data / "train.csv").unlink()
        inc = wandb.Artifact("ds", "dataset", incremental=True)
        inc.add_file(str(extra))
        inc.remove("sub")
        run.log_artifact(inc).wait()
    assert inc.version == "v1"
    assert sorted(e.path for e in inc.files()) == ["extra.csv", "train.csv"]
    out = Path(inc.download(str(tmp_path / "out")))
    assert (out / "train.csv").read_text() == "a,b\n1,2\n"
    # The first version of a collection has no base: incremental logs it as is.
    with wandb.init(entity="team-a", project="p") as run:
        fresh = wandb.Artifact("fresh", "dataset", incremental=True)
        fresh.add_file(str(extra))
        assert run.log_artifact(fresh).wait().version == "v0"


@pytest.mark.parametrize("uri", ["s3://bucket/prefix/", "gs://bucket/prefix/"])
def test_pending_server_references_have_no_digest_yet(uri: str, tmp_path: Path) -> None:
    f = tmp_path / "f.txt"
    f.write_text("f")
    art = wandb.Artifact("refs", "dataset")
    art.add_file(str(f))
    art.add_reference(uri)
    with pytest.raises(depot.FailedPreconditionError, match=uri):
        art.digest  # noqa: B018 - the property is what raises
    with pytest.raises(depot.FailedPreconditionError):
        art.size  # noqa: B018


def test_aliases_and_tags_are_checked(wb: World, tmp_path: Path) -> None:
    f = tmp_path / "f.txt"
    f.write_text("f")
    with wandb.init(entity="team-a", project="p") as run:
        art = wandb.Artifact("ds", "dataset")
        art.add_file(str(f))
        with pytest.raises(wandb.InvalidArgumentError, match="reserved"):
            run.log_artifact(art, aliases=["v3"])
        with pytest.raises(wandb.InvalidArgumentError, match="list of strings"):
            run.log_artifact(art, aliases="best")
        run.log_artifact(art).wait()
    art.aliases.append("v9")
    with pytest.raises(wandb.InvalidArgumentError, match="reserved"):
        art.save()
    art.aliases.remove("v9")
    art.aliases.remove("latest")  # Depot's to place: saving keeps it where it is
    art.save()
    assert art.aliases == ["latest"]


def test_save_logs_an_artifact_never_logged(wb: World, tmp_path: Path) -> None:
    f = tmp_path / "f.txt"
    f.write_text("f")
    art = wandb.Artifact("solo", "dataset")
    art.add_file(str(f))
    art.save(project="p")  # W&B logs it from a run of its own
    assert art.qualified_name == "bob/p/solo:v0"
    assert art.logged_by() is not None and art.logged_by().job_type == "auto"


def test_unsupported_rows_say_why(wb: World, tmp_path: Path) -> None:
    art = wandb.Artifact("ds", "dataset")
    with wandb.init(entity="team-a", project="p") as run, pytest.raises(wandb.UnsupportedError, match="log it"):
        run.use_artifact(art)
    with pytest.raises(wandb.UnsupportedError, match="Settings"):
        art.save(settings=object())
    for call in (lambda: art.get("table"), lambda: art.add(object(), "table")):
        with pytest.raises(NotImplementedError, match="media objects"):
            call()
    with pytest.raises(wandb.UnsupportedError, match="offline or disabled"):
        wandb.init(project="p", mode="offline")
    with pytest.raises(wandb.InvalidArgumentError, match="policy"):
        art.add_file(__file__, policy="sometimes")
    with pytest.raises(wandb.FailedPreconditionError, match="registry link"):
        art.unlink()
    f = tmp_path / "report.csv"
    f.write_text("r")
    # is_tmp names the file after its content, as W&B does.
    e = art.add_file(str(f), name="dir/report.csv", is_tmp=True)
    assert e.path.startswith("dir/") and e.path.endswith(".csv") and len(e.path) == len("dir/") + 20 + len(".csv")


def test_fresh_version_with_json_lossy_metadata_is_applied(
    wb: World, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A tuple comes back as a list and an int key as a string: stored as sent, not "not applied".
    data = _files(tmp_path / "data")
    with wandb.init(entity="team-a", project="p") as run:
        art = wandb.Artifact("shaped", "dataset", metadata={"shape": (3, 4), 7: "seven"})
        art.add_dir(str(data))
        with caplog.at_level(logging.WARNING, logger="depot"):
            run.log_artifact(art).wait()
    assert art.version == "v0" and art.metadata_applied is True
    assert "logged already" not in caplog.text
    assert wandb.Api().artifact("team-a/p/shaped:v0").metadata == {"shape": [3, 4], "7": "seven"}
