"""`depot gc run|status`: readable reports, --json, and the role errors as one line."""

from __future__ import annotations

import json

import pytest
from support.world import TEAM, World

from depot.cli import main


@pytest.fixture
def cli(world: World, server, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    monkeypatch.setenv("DEPOT_ADDRESS", server.address)

    def run(key: str, *args: str) -> tuple[int, str, str]:
        monkeypatch.setenv("DEPOT_API_KEY", key)
        rc = main(list(args))
        out, err = capsys.readouterr()
        return rc, out, err

    return run


def test_gc_run_and_status(cli, world: World, server) -> None:
    admin, alice, bob = server.admin_key, world["alice"].key, world["bob"].key
    world["bob"].log(TEAM, "p", "ds", {"f": b"x"})
    rc, out, _ = cli(admin, "gc", "run", "--dry-run")
    assert rc == 0 and out.startswith("dry run over all entities, run_now, started ")
    assert "  expired: 0" in out and "PHASE" in out and "purge_pending" in out
    rc, out, _ = cli(alice, "--json", "gc", "run", "--entity", TEAM)
    report = json.loads(out)
    assert rc == 0 and (report["ran"], report["dry_run"], report["entity"]) == (True, False, TEAM)
    assert report["versions_expired"] == 0 and isinstance(report["duration"], (int, float))
    assert [p["name"] for p in report["phases"]][:3] == ["expire", "purge", "purge_pending"]
    rc, out, _ = cli(admin, "gc", "status")
    lines = out.splitlines()
    assert rc == 0 and lines[0] == "schedule: every 1h" and lines[1] == "grace period: 7d"
    assert "running now: no" in lines
    table = lines[lines.index("running now: no") + 1 :]
    assert table[0].split()[:3] == ["STARTED", "ENTITY", "TRIGGER"]
    assert [row.split()[1] for row in table[1:]] == [TEAM, "*"]
    rc, out, _ = cli(alice, "--json", "gc", "status", "--entity", TEAM)
    status = json.loads(out)
    assert rc == 0 and [p["entity"] for p in status["last_passes"]] == [TEAM]
    assert status["grace_period"] == 7 * 86400 and status["interval"] == 3600
    # A member is no admin: one line naming the refusal, exit 1.
    rc, out, err = cli(bob, "gc", "run", "--entity", TEAM)
    assert (rc, out) == (1, "") and err.startswith("depot: error: PermissionDeniedError") and err.count("\n") == 1
