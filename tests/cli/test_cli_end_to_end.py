"""The `depot` CLI end to end: tables, --json, non-zero exit with a one-line reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.world import TEAM, World

import depot
import depot._admin
from depot.cli import main, parse_duration


@pytest.fixture
def cli(world: World, server, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    monkeypatch.setenv("DEPOT_ADDRESS", server.address)
    monkeypatch.setenv("DEPOT_API_KEY", server.admin_key)

    def run(*args: str) -> tuple[int, str, str]:
        rc = main(list(args))
        out, err = capsys.readouterr()
        return rc, out, err

    return run


def test_cli_covers_the_features(cli, world: World, server, tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with depot.init(entity=TEAM, project="p", name="r1", address=server.address, api_key=server.admin_key) as run:
        a = depot.Artifact("churn", type="model")
        a.add_file(tmp_path / "f")
        run.log_artifact(a).wait()
    rc, out, _ = cli("artifact", "ls", f"{TEAM}/p/churn")
    assert rc == 0 and out.splitlines()[0].split()[:2] == ["VERSION", "ALIASES"] and "v0" in out
    rc, out, _ = cli("artifact", "alias", "add", f"{TEAM}/p/churn:v0", "prod")
    assert rc == 0 and "prod" in out
    rc, out, _ = cli("--json", "artifact", "ls", f"{TEAM}/p/churn", "--alias", "prod")
    assert rc == 0 and json.loads(out)[0]["aliases"] == ["latest", "prod"]
    listed = json.loads(out)[0]
    # snake_case proto names, int64 as numbers, unset messages as null
    assert listed["index"] == 0 and listed["size"] == 1 and listed["file_count"] == 1
    assert listed["ttl_mode"] == "TTL_MODE_INHERIT" and listed["link"] is None
    assert listed["commit_time"].endswith("Z")
    rc, out, _ = cli("artifact", "ttl", f"{TEAM}/p/churn:prod", "--set", "30d")
    assert rc == 0 and "30 days" in out
    rc, out, _ = cli("artifact", "ttl", f"{TEAM}/p/churn:prod", "--json")
    assert rc == 0 and json.loads(out)["ttl"] == 30 * 86400 and json.loads(out)["ttl_mode"] == "TTL_MODE_DURATION"
    rc, out, err = cli("artifact", "ttl", f"{TEAM}/p/churn:prod", "--set", "0.5s")
    assert rc == 1 and out == "" and len(err.strip().splitlines()) == 1 and "at least one second" in err
    rc, out, err = cli("--json", "artifact", "ttl", f"{TEAM}/p/churn:prod", "--set", "0.5s")
    assert rc == 1 and out == ""
    error = json.loads(err)["error"]
    assert error["code"] == "InvalidArgumentError" and error["field"] == "ttl"
    assert "at least one second" in error["message"]
    rc, out, _ = cli("artifact", "link", f"{TEAM}/p/churn:v0", "acme/wandb-registry-model/churn", "--alias", "staging")
    assert rc == 0 and "acme/wandb-registry-model/churn:v0" in out
    rc, out, _ = cli("artifact", "ttl", "acme/wandb-registry-model/churn:staging")
    assert rc == 0 and "never expires" in out
    rc, out, _ = cli("registry", "ls", "acme")
    assert rc == 0 and "model" in out and "dataset" in out
    rc, out, _ = cli("registry", "links", "acme/wandb-registry-model/churn")
    assert rc == 0 and "staging" in out
    rc, out, _ = cli("registry", "create", "acme", "evals", "--type", "table")
    assert rc == 0
    rc, out, _ = cli("--json", "registry", "collections", "acme/model")
    assert json.loads(out)[0]["link_count"] == 1
    rc, out, _ = cli("artifact", "lineage", f"{TEAM}/p/churn:v0", "--depth", "2", "--format", "dot")
    assert rc == 0 and out.startswith("digraph") and '"run team-a/p/r1"' in out
    rc, out, _ = cli("artifact", "lineage", f"{TEAM}/p/churn:v0")
    assert rc == 0 and "<- run team-a/p/r1" in out
    rc, out, _ = cli("team", "member", TEAM, "bob", "viewer")
    assert rc == 0
    rc, out, _ = cli("team", "members", TEAM)
    assert "bob" in out and "viewer" in out
    rc, out, _ = cli("team", "settings", TEAM, "--default-ttl", "7d", "--ttl-policy", "admins")
    assert rc == 0 and "7 days" in out and "admins" in out
    rc, out, _ = cli("--json", "team", "settings", TEAM, "--default-ttl", "never")
    settings = json.loads(out)["settings"]
    assert settings == {"default_ttl": None, "ttl_policy": "TTL_POLICY_ADMINS"}
    rc, out, err = cli("key", "create", "--description", "ci")
    key = out.strip()
    assert rc == 0 and key.startswith("dpt_") and "shown once" in err
    rc, out, _ = cli("--json", "key", "ls")
    keys = json.loads(out)
    assert any(k["description"] == "ci" and k["revoke_time"] is None for k in keys)
    rc, out, _ = cli("key", "revoke", key.split("_")[1])
    assert rc == 0 and "revoked" in out
    rc, out, _ = cli("--json", "key", "ls")
    assert [k["revoke_time"] is not None for k in json.loads(out) if k["description"] == "ci"] == [True]
    rc, out, _ = cli("user", "create", "zoe")
    assert rc == 0
    rc, out, _ = cli("entity", "ls")
    assert "zoe" in out
    rc, _, err = cli("artifact", "get", f"{TEAM}/p/nope:v0")
    assert rc == 1 and err.startswith("depot: error: NotFoundError")
    rc, out, err = cli("artifact", "get", f"{TEAM}/p/nope:v0", "--json")
    assert rc == 1 and out == ""
    error = json.loads(err)["error"]
    assert error["code"] == "NotFoundError" and "nope" in error["message"]
    rc, out, err = cli("--json", "team", "member", TEAM, "nobody-here", "viewer")
    assert rc == 1 and json.loads(err)["error"]["code"] == "NotFoundError"


def test_parse_duration() -> None:
    assert parse_duration("90s").total_seconds() == 90
    assert parse_duration("2w").days == 14
    with pytest.raises(depot.InvalidArgumentError):
        parse_duration("soon")


def test_listings_read_every_page(cli, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    # Pages of two: five registries (model, dataset and three more) take three pages.
    monkeypatch.setattr(depot._admin, "_PAGE_SIZE", 2)
    for name in ("evals", "prompts", "tables"):
        assert cli("registry", "create", "acme", name)[0] == 0
    rc, out, _ = cli("--json", "registry", "ls", "acme")
    assert rc == 0
    assert sorted(r["name"].rsplit("/", 1)[1] for r in json.loads(out)) == [
        "dataset",
        "evals",
        "model",
        "prompts",
        "tables",
    ]
