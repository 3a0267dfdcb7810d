"""A database stop/start or freeze under concurrent calls: clients see only
retryable, bounded answers, and the server recovers by itself.

``depot server`` on embedded defaults serves 28 clients committing small
versions (PutManifest, CreateArtifactVersion) and one resolving ``latest``,
through generated stubs with no retries, so every failure is seen. The
harness is ``bench/pg_faults.py`` (``--mode restart`` / ``--mode freeze``).

Before: asyncpg's CannotConnectNowError ("the database system is shutting
down"), AdminShutdownError and InternalClientError ("cannot switch to state
...") reached clients as INTERNAL, which the SDK does not retry; a
SIGSTOPped PostgreSQL held every call for as long as it stayed frozen.
"""

from __future__ import annotations

from pathlib import Path

import pg_faults  # bench/pg_faults.py, the harness these tests share with the benchmark
import pytest

from depot.services.metadata import db


@pytest.mark.slow
@pytest.mark.timeout(300)  # server and PostgreSQL starts on a busy 2-core machine
def test_postgres_stop_start_under_calls_answers_only_unavailable_and_recovers(tmp_path: Path) -> None:
    out = pg_faults.run_once(tmp_path / "data", mode="restart", writers=28, before_s=2.0, after_s=2.0)
    summary = out.summary()
    codes = out.codes()
    assert codes.get("UNAVAILABLE", 0) > 0, summary  # the outage was seen...
    assert set(codes) <= {"OK", "UNAVAILABLE"}, summary  # ...and only as "retry"
    # Commits succeed again without restarting the server, and nothing acknowledged was lost.
    assert out.ok_after_fault() > 0, summary
    assert out.lost == [] and out.gaps == [], summary


# The documented bound: waiting for a connection (connecting included), then one statement.
FROZEN_BOUND_S = db.ACQUIRE_TIMEOUT_S + db.CLIENT_TIMEOUT_S
# Scheduling on a loaded 2-core machine, and the second RPC of a request that
# was already running when the freeze began.
SLACK_S = 3.0


@pytest.mark.slow
@pytest.mark.timeout(300)  # server and PostgreSQL starts on a busy 2-core machine
def test_frozen_postgres_answers_unavailable_within_the_bound(tmp_path: Path) -> None:
    freeze_s = FROZEN_BOUND_S + 2.0  # longer than the bound: a call held for the whole freeze fails the test
    out = pg_faults.run_once(tmp_path / "data", mode="freeze", writers=8, before_s=1.0, after_s=2.0, freeze_s=freeze_s)
    summary = out.summary()
    failed = [c for c in out.calls if c.code != "OK"]
    assert failed, summary  # the freeze was answered, not waited out
    assert {c.code for c in failed} <= {"UNAVAILABLE", "DEADLINE_EXCEEDED"}, summary
    slowest = max(c.end - c.start for c in out.calls)
    assert slowest <= FROZEN_BOUND_S + SLACK_S, summary
    # Answered during the freeze, not only once PostgreSQL was let go.
    assert any(c.end < out.fault_end for c in failed), summary
    assert out.ok_after_fault() > 0, summary
