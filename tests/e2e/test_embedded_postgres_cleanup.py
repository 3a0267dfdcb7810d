"""Embedded clusters that outlive a temporary data dir (as root) are removed on the next start."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from depot.services.allinone import postgres


def _cluster(root: Path, cluster_id: str, owner: Path | None, pid: int | None = None) -> Path:
    pgdata = root / f"depot-pg-{cluster_id}"
    pgdata.mkdir()
    (pgdata / "PG_VERSION").write_text("15\n")
    if owner is not None:
        (pgdata / "depot-data-dir").write_text(str(owner))
    if pid is not None:
        (pgdata / "postmaster.pid").write_text(f"{pid}\n")
    return pgdata


def _data_dir(root: Path, name: str, cluster_id: str) -> Path:
    d = root / name
    d.mkdir()
    (d / "pg-cluster-id").write_text(cluster_id)
    return d


def test_only_clusters_of_deleted_temporary_data_dirs_are_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clusters, temp, home = tmp_path / "clusters", tmp_path / "tmp", tmp_path / "home"
    for d in (clusters, temp, home):
        d.mkdir()
    monkeypatch.setattr(postgres, "CLUSTERS_DIR", clusters)
    monkeypatch.setattr(postgres, "THROWAWAY_ROOT", temp)
    live = _cluster(clusters, "aaaa", _data_dir(temp, "live", "aaaa"))
    orphan = _cluster(clusters, "bbbb", temp / "deleted")
    # A data dir outside the temp dir may have been moved or not be mounted yet.
    moved = _cluster(clusters, "cccc", home / ".depot")
    legacy = _cluster(clusters, "eeee", None)  # no owner recorded: unknown, kept
    running = _cluster(clusters, "ffff", temp / "gone-too", pid=os.getpid())

    removed = postgres.remove_orphan_clusters()

    assert removed == [orphan]
    assert [p.exists() for p in (live, orphan, moved, legacy, running)] == [True, False, True, True, True]
