"""The stored reports of GC passes (table gc_passes, migration 0007).

jsonb columns go in and out as Python values: metadata's pools (db.create_pool)
carry a json codec.

The GC's own table in metadata's database: it is written only here. A pass
inserts its row when it starts (so GetStatus shows it running and a
RunNow retry finds it) and fills it in when it ends. A row left without an
end_time belongs to a process that died mid-pass; the next pass, holding the
collector lock and so sure no other pass runs, closes it as interrupted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from .report import COUNTERS, Phase, Report

# Reports kept: enough for weeks of hourly passes and a burst of RunNow calls.
KEEP = 500
# Reports GetStatus answers (gc.proto: "up to 10").
LAST = 10

INTERRUPTED = "interrupted: the collector stopped before this pass ended"

_COLUMNS = (
    "entity, trigger, dry_run, start_time, end_time, sample, phases, errors, caller_id, request_id, "
    + ", ".join(COUNTERS)
)


@dataclass(frozen=True)
class RequestKey:
    """RunNow's request_id and who sent it: a retry gets the first pass's report."""

    caller_id: int
    request_id: str


async def close_interrupted(conn: PoolConnectionProxy) -> None:
    """Ends the rows of passes whose process died; the caller holds the collector lock."""
    await conn.execute(
        "UPDATE gc_passes SET end_time = now(), errors = errors || $1::jsonb WHERE end_time IS NULL",
        [INTERRUPTED],
    )


async def begin(conn: PoolConnectionProxy, report: Report, request: RequestKey | None) -> int:
    """Stores a pass that starts now; returns its id."""
    return int(
        await conn.fetchval(
            """
            INSERT INTO gc_passes (entity, trigger, dry_run, start_time, caller_id, request_id)
            VALUES ($1, $2, $3, $4, $5, $6) RETURNING id
            """,
            report.entity,
            report.trigger,
            report.dry_run,
            report.start_time,
            request.caller_id if request else None,
            request.request_id if request else None,
        )
    )


async def finish(conn: PoolConnectionProxy, pass_id: int, report: Report) -> None:
    """Stores what the pass did, and keeps the newest ``KEEP`` reports."""
    sets = ", ".join(f"{name} = ${i}" for i, name in enumerate(COUNTERS, start=6))
    await conn.execute(
        f"""
        UPDATE gc_passes SET end_time = start_time + $2 * interval '1 second',
            sample = $3, phases = $4::jsonb, errors = $5::jsonb, {sets}
        WHERE id = $1
        """,
        pass_id,
        report.duration_s,
        report.sample,
        [{"name": p.name, "duration_s": p.duration_s, "items": p.items} for p in report.phases],
        report.errors,
        *report.counters().values(),
    )
    await conn.execute(
        "DELETE FROM gc_passes WHERE id <= (SELECT id FROM gc_passes ORDER BY id DESC OFFSET $1 LIMIT 1)", KEEP
    )


async def find(conn: PoolConnectionProxy, request: RequestKey) -> Report | None:
    """The pass a RunNow with this request_id started, if it is still kept."""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM gc_passes WHERE caller_id = $1 AND request_id = $2",
        request.caller_id,
        request.request_id,
    )
    return None if row is None else _report(row)


async def last(conn: PoolConnectionProxy, entity: str | None, limit: int = LAST) -> list[Report]:
    """The newest reports, newest first: of passes limited to ``entity``, or of all passes (None)."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM gc_passes WHERE $1::text IS NULL OR entity = $1 ORDER BY id DESC LIMIT $2",
        entity,
        limit,
    )
    return [_report(r) for r in rows]


def _report(row: asyncpg.Record) -> Report:
    end, start = row["end_time"], row["start_time"]
    phases: list[dict[str, Any]] = row["phases"]
    report = Report(
        ran=True,
        dry_run=row["dry_run"],
        entity=row["entity"],
        trigger=row["trigger"],
        start_time=start,
        duration_s=(end - start).total_seconds() if end is not None else 0.0,
        finished=end is not None,
        sample=list(row["sample"]),
        phases=[Phase(p["name"], float(p["duration_s"]), int(p["items"])) for p in phases],
        errors=[str(e) for e in row["errors"]],
    )
    for name in COUNTERS:
        setattr(report, name, int(row[name]))
    return report


__all__ = ["KEEP", "LAST", "INTERRUPTED", "RequestKey", "begin", "close_interrupted", "find", "finish", "last"]
