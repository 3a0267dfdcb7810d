"""bench/references.py --e2e runs every user step at a small size and prints its JSON lines.

The bench drives a real ``depot server`` subprocess (on the suite's
PostgreSQL), the S3 simulator and SDK client subprocesses; this test holds it
to its output contract, not to any timing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "references.py"


@pytest.mark.slow
@pytest.mark.timeout(600)  # a server start, PostgreSQL and six client processes on a busy 2-core machine
def test_e2e_bench_prints_every_step_with_its_fields(database_url: str) -> None:
    out = subprocess.run(
        [sys.executable, str(BENCH), "--e2e", "--objects", "2000", "--download-objects", "300"]
        + ["--filler-max", "1024", "--database-url", database_url, "--child-timeout", "300"],
        capture_output=True,
        text=True,
        timeout=580,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    rows = {r["op"]: r for r in map(json.loads, out.stdout.splitlines())}
    assert list(rows) == ["library", "log_reference", "iterate", "get_entry", "export", "download"]
    for op, row in rows.items():
        assert "error" not in row, (op, row, out.stderr[-3000:])
        assert row["objects"] == 2000 and row["latency_ms"] == 0.0
        assert row["wall_s"] > 0 and row["client_peak_rss_mib"] > 0
    assert rows["library"]["native"] is True
    log = rows["log_reference"]
    assert log["server_peak_rss_mib"] > 0
    assert log["library_wall_s"] == rows["library"]["wall_s"] and log["ratio_vs_library"] > 0
    assert log["digest_matches_library"] is True
    assert rows["iterate"]["entries"] == 2000 and rows["iterate"]["entries_per_s"] > 0
    assert rows["get_entry"]["samples"] == 200 and rows["get_entry"]["p99_ms"] >= rows["get_entry"]["p50_ms"] >= 0
    assert rows["export"]["bytes"] > 2000 * 50
    download = rows["download"]
    assert download["downloaded"] == 300 and download["cold_cache"] is True
    assert download["bytes"] > 0 and download["objects_per_s"] > 0
    assert "[references --e2e" in out.stderr  # progress goes to stderr


def test_an_unknown_step_is_refused() -> None:
    out = subprocess.run([sys.executable, str(BENCH), "--e2e", "--ops", "iterate,nope"], capture_output=True, text=True)
    assert out.returncode != 0
    assert "--ops: unknown step(s) nope" in out.stderr
