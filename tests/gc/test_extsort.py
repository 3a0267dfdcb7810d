"""The mark's external sort: every key out exactly once, in order, whatever the runs; a failed write loses nothing."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from depot.services.gc import extsort
from depot.services.gc.extsort import ExternalSort, SortFailed


def test_past_the_compaction_threshold_every_key_comes_out_once(tmp_path: Path) -> None:
    """300 runs of 10 keys: compactions (at 128 runs) shrink the run list while spills go on."""
    keys = [f"team/blobs/xxh3_128/{i % 256:02x}/{i:032x}" for i in range(3000)]
    rng = random.Random(12)
    added = keys + rng.sample(keys, 500)  # repeats, spread over the runs
    rng.shuffle(added)
    sort = ExternalSort(tmp_path, run_keys=10)
    for start in range(0, len(added), 7):
        sort.add(added[start : start + 7])
    out = list(sort.sorted())
    assert out == sorted(keys)
    assert list(tmp_path.iterdir()) == []


def test_a_failed_spill_keeps_its_keys_and_the_runs_written(tmp_path: Path) -> None:
    """ENOSPC-like: a run file cannot be written. The sort says so and its state is unchanged."""
    sort = ExternalSort(tmp_path, run_keys=4)
    sort.add(["d", "a", "c", "b"])  # one run written
    (tmp_path / "run-00000001").mkdir()  # the next run's name is taken: its open fails
    with pytest.raises(SortFailed, match="writing"):
        sort.add(["h", "f", "e", "g"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run-00000000", "run-00000001"]
    assert list(sort.sorted()) == list("abcdefgh")


def test_a_failed_compaction_keeps_every_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(extsort, "MAX_FAN_IN", 2)
    sort = ExternalSort(tmp_path, run_keys=1)
    sort.add(["c", "a", "b"])  # 3 runs: the 4th spill compacts the first two
    # The merged file's name is taken: its write fails.
    (tmp_path / "run-00000004").mkdir()
    with pytest.raises(SortFailed):
        sort.add(["d"])
    (tmp_path / "run-00000004").rmdir()
    assert list(sort.sorted()) == ["a", "b", "c", "d"]
