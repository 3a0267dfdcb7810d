"""`depot artifact rm` (one version, or many by filter as an operation) and `depot artifact undelete`."""

from __future__ import annotations

import io
import json
from collections.abc import Callable

import pytest
from google.protobuf import field_mask_pb2
from support.servers import ServerThread
from support.world import COLL, PROJECT, World, log_version, rid

import depot
from depot._bulk_delete import DeleteOperation
from depot.cli import main
from depot.metadata.v1 import metadata_pb2 as pb

Cli = Callable[..., tuple[int, str, str]]
TARGET = "team-a/p/ds"


@pytest.fixture
def cli(server: ServerThread, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Cli:
    monkeypatch.setenv("DEPOT_ADDRESS", server.address)
    monkeypatch.setenv("DEPOT_API_KEY", server.admin_key)

    def run(*args: str) -> tuple[int, str, str]:
        rc = main(list(args))
        out, err = capsys.readouterr()
        return rc, out, err

    return run


def _versions(world: World, n: int) -> list[pb.ArtifactVersion]:
    bob = world["bob"]
    bob.CreateRun(pb.CreateRunRequest(parent=PROJECT, run_id="r"))
    return [log_version(bob, PROJECT, "ds", f"{PROJECT}/runs/r", f"{i}".encode()) for i in range(n)]


def _live(world: World) -> list[int]:
    page = world.admin.ListArtifactVersions(pb.ListArtifactVersionsRequest(parent=COLL, page_size=1000))
    return sorted(v.index for v in page.versions)


def test_dry_run_then_delete_by_filter(cli: Cli, world: World) -> None:
    v = _versions(world, 5)
    world["bob"].AddAliases(pb.AddAliasesRequest(version=v[0].name, aliases=["prod"], request_id=rid()))
    rc, out, _ = cli("artifact", "rm", TARGET, "--without-aliases", "--dry-run")
    assert rc == 0
    assert out.splitlines() == [
        "4 versions match (nothing deleted)",
        *(f"  team-a/p/ds:v{i}" for i in range(1, 5)),
    ]
    assert _live(world) == [0, 1, 2, 3, 4]
    rc, out, err = cli("--json", "artifact", "rm", "team-a/p", "--all")
    assert rc == 0, err
    done = json.loads(out)
    assert (done["state"], done["matched"], done["deleted"], done["skipped_aliased"]) == ("done", 5, 4, 1)
    assert _live(world) == [0]
    rc, out, err = cli("artifact", "rm", "team-a/p", "--all", "--delete-aliases")
    assert rc == 0 and "deleted 1 of 1 matching versions" in out
    assert _live(world) == []


def test_filters_from_flags(cli: Cli, world: World) -> None:
    v = _versions(world, 3)
    world["bob"].UpdateArtifactVersion(
        pb.UpdateArtifactVersionRequest(
            version=pb.ArtifactVersion(name=v[1].name, tags=["stale"], metadata_json='{"split": "train"}'),
            update_mask=field_mask_pb2.FieldMask(paths=["tags", "metadata_json"]),
            request_id=rid(),
        )
    )
    for flags in (["--tag", "stale"], ["--metadata", 'split="train"'], ["--type", "model", "--tag", "stale"]):
        rc, out, _ = cli("--json", "artifact", "rm", TARGET, *flags, "--dry-run")
        assert rc == 0 and json.loads(out)["sample"] == [f"{COLL}/versions/v1"], flags
    rc, out, _ = cli("--json", "artifact", "rm", TARGET, "--older-than", "1d", "--dry-run")
    assert json.loads(out)["matched"] == 0
    rc, out, _ = cli("--json", "artifact", "rm", TARGET, "--older-than", "0s", "--dry-run")
    assert json.loads(out)["matched"] == 3


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["artifact", "rm", TARGET], "--all"),
        (["artifact", "rm"], "give what to delete"),
        (["artifact", "rm", f"{TARGET}:v0", "--all"], "one version"),
        (["artifact", "rm", TARGET, "--metadata", "split"], "KEY=JSON"),
        (["artifact", "rm", TARGET, "--metadata", "split=train"], "not JSON"),
        (["artifact", "rm", TARGET, "--older-than", "soon"], "invalid duration"),
        (["artifact", "rm", "team-a", "--all"], "ENTITY/PROJECT"),
        (["artifact", "rm", TARGET, "--resume", "operations/x"], "no target"),
    ],
)
def test_refuses_unclear_requests(cli: Cli, world: World, args: list[str], says: str) -> None:
    _versions(world, 1)
    rc, out, err = cli(*args)
    assert rc == 1 and out == "" and says in err
    assert _live(world) == [0]


def test_resume_by_name_or_request_id(cli: Cli, world: World) -> None:
    _versions(world, 3)
    rc, out, err = cli("artifact", "rm", TARGET, "--all", "--request-id", "wipe-1")
    assert rc == 0
    name = err.split(":", 1)[0]
    assert name.startswith("operations/") and f"depot artifact rm --resume {name}" in err
    # Either way answers the same operation, finished.
    rc, out, _ = cli("--json", "artifact", "rm", TARGET, "--all", "--request-id", "wipe-1")
    again = json.loads(out)
    assert (again["name"], again["state"], again["deleted"]) == (name, "done", 3)
    rc, out, _ = cli("artifact", "rm", "--resume", name)
    assert rc == 0 and out.strip() == f"{name}: deleted 3 of 3 matching versions"


def test_progress_follows_the_operation(world: World, server: ServerThread) -> None:
    _versions(world, 4)
    api = depot.Api(server.address, world["bob"].key)
    seen: list[tuple[str, int]] = []
    op = api.delete_artifact_versions(TARGET, request_id=rid())
    op.wait(progress=lambda o: seen.append((o.state, o.deleted)))
    assert seen[-1] == ("done", 4) and op.done and op.sample[0] == f"{COLL}/versions/v0"
    assert api.delete_operation(op.name).refresh().deleted == 4
    # A viewer may not delete.
    with pytest.raises(depot.PermissionDeniedError):
        depot.Api(server.address, world["carol"].key).delete_artifact_versions(TARGET, dry_run=True)
    with pytest.raises(depot.InvalidArgumentError):
        api.delete_artifact_versions(TARGET, metadata={"a": 1, "b": 2})


def test_progress_bar_draws_on_a_terminal(world: World, server: ServerThread, monkeypatch: pytest.MonkeyPatch) -> None:
    _versions(world, 2)

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Tty()
    monkeypatch.setattr("sys.stderr", tty)
    monkeypatch.setenv("DEPOT_ADDRESS", server.address)
    monkeypatch.setenv("DEPOT_API_KEY", world["bob"].key)
    assert main(["artifact", "rm", TARGET, "--all"]) == 0
    drawn = tty.getvalue()
    assert "\r" in drawn and "deleting (operations/" in drawn and "2/2 objects" in drawn


def test_one_version_rm_and_undelete(cli: Cli, world: World) -> None:
    v = _versions(world, 2)
    world["bob"].AddAliases(pb.AddAliasesRequest(version=v[0].name, aliases=["prod"], request_id=rid()))
    rc, _, err = cli("artifact", "rm", f"{TARGET}:prod")
    assert rc == 1 and "prod" in err
    rc, out, _ = cli("artifact", "rm", f"{TARGET}:prod", "--delete-aliases")
    assert rc == 0 and out.startswith("team-a/p/ds:v0: deleted; `depot artifact undelete team-a/p/ds:v0` restores it")
    assert _live(world) == [1]
    rc, out, _ = cli("artifact", "undelete", f"{TARGET}:v0")
    assert rc == 0 and "aliases back: prod" in out
    assert _live(world) == [0, 1]


def test_dry_run_answer_is_an_operation(server: ServerThread, world: World) -> None:
    _versions(world, 1)
    op = depot.Api(server.address, world["bob"].key).delete_artifact_versions(TARGET, dry_run=True)
    assert isinstance(op, DeleteOperation) and op.done and (op.state, op.matched, op.name) == ("dry_run", 1, "")
