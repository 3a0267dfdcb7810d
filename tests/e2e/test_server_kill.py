"""The SDK rides over server restarts: SIGKILL under concurrent writers.

A real ``depot server`` process on a fixed data dir and port is SIGKILLed
and started again every ~2.5 s while 8 writer threads log small (inline)
and medium (UploadBlob-streamed) artifacts. No error may reach a writer,
every acknowledged version must download and match its bytes, and a
retried commit must not become a second version. The harness is
``bench/restarts.py`` (which runs the same scenario on demand, 5 times).

Before the SDK's time-based retry window, uploads were not retried at all
("Stream removed") and unary calls spent their 5 retries inside gRPC's
reconnect backoff, so every kill reached some writers.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import restarts  # bench/restarts.py, the harness this test shares with the benchmark


@pytest.mark.slow
@pytest.mark.timeout(300)  # server and PostgreSQL starts on a busy 2-core machine
def test_writers_see_no_error_across_server_kills_and_every_acked_version_verifies(
    tmp_path: Path, database_url: str
) -> None:
    out = restarts.run_once(tmp_path / "data", writers=8, kills=4, interval_s=2.5, database_url=database_url)
    assert out.kills == 4
    assert out.errors == []
    assert out.mismatches == []
    # Writers kept logging through every kill, not just before the first.
    assert all(n > 0 for n in out.acks_per_interval()), out.acks_per_interval()
    assert out.verified == out.acked
