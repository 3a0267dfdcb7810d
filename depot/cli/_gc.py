"""``depot gc``: run a garbage-collection pass now, and what the last passes did."""

from __future__ import annotations

import argparse

from depot._admin import Admin
from depot.gc.v1 import gc_pb2

from ._args import Actions, command, group
from ._output import message_json, show, table, when

ENTITY_HELP = "only this entity (its admins may); default: every entity (superusers)"
# Counters in the order a pass goes: what it changed in metadata, then in the blob store.
_COUNTERS = [
    ("expired", "versions_expired"),
    ("purged", "versions_purged"),
    ("pending purged", "pending_purged"),
    ("manifests deleted", "manifests_deleted"),
    ("blobs deleted", "blobs_deleted"),
    ("bytes freed", "bytes_freed"),
    ("blobs scanned", "blobs_scanned"),
]


def register(sub: Actions) -> None:
    actions = group(sub, "gc", "garbage collection: TTL expiry, purge of deleted versions, blob sweep")
    p = command(actions, "run", run, "run one pass now and print its report")
    p.add_argument("--entity", help=ENTITY_HELP)
    p.add_argument("--dry-run", action="store_true", help="change nothing; report what the pass would do")
    p = command(actions, "status", status, "the schedule and the last passes")
    p.add_argument("--entity", help=ENTITY_HELP)


def run(opts: argparse.Namespace) -> int:
    r = Admin().run_gc(opts.entity, dry_run=opts.dry_run)
    return show(opts, message_json(r), report_text(r))


def status(opts: argparse.Namespace) -> int:
    s = Admin().gc_status(opts.entity)
    return show(opts, message_json(s), status_text(s))


def report_text(r: gc_pb2.CollectionReport) -> str:
    """One pass: what it did (or would do), per phase, and what went wrong."""
    if not r.ran:
        return "another collector is running a pass now; nothing was done (try again later)"
    scope = f"entity {r.entity}" if r.entity else "all entities"
    lines = [
        f"{'dry run' if r.dry_run else 'pass'} over {scope}, {r.trigger}, started {when(r.start_time)},"
        f" {r.duration.ToTimedelta().total_seconds():.1f} s"
    ]
    lines += [f"  {label}: {getattr(r, field)}" for label, field in _COUNTERS]
    phases = [[p.name, f"{p.duration.ToTimedelta().total_seconds():.3f}", p.items] for p in r.phases]
    lines.append(table(phases, ["PHASE", "SECONDS", "ITEMS"]))
    if r.sample:
        lines.append(f"versions {'that would be ' if r.dry_run else ''}expired or purged (sample):")
        lines += [f"  {name}" for name in r.sample]
    if r.errors:
        lines.append("errors:")
        lines += [f"  {e}" for e in r.errors]
    return "\n".join(lines)


def status_text(s: gc_pb2.GcStatus) -> str:
    interval = s.interval.ToTimedelta().total_seconds()
    lines = [
        f"schedule: {'every ' + _seconds(interval) if interval else 'off (depot gc run only)'}",
        f"grace period: {_seconds(s.grace_period.ToTimedelta().total_seconds())}",
    ]
    if s.HasField("next_pass_time"):
        lines.append(f"next pass: {when(s.next_pass_time)}")
    lines.append(f"running now: {'yes' if s.running else 'no'}")
    header = [
        "STARTED",
        "ENTITY",
        "TRIGGER",
        "DRY",
        "SECONDS",
        "EXPIRED",
        "PURGED",
        "PENDING",
        "BLOBS",
        "BYTES",
        "ERRORS",
    ]
    rows = [
        [
            when(p.start_time),
            p.entity or "*",
            p.trigger,
            "yes" if p.dry_run else "",
            f"{p.duration.ToTimedelta().total_seconds():.1f}",
            p.versions_expired,
            p.versions_purged,
            p.pending_purged,
            p.blobs_deleted,
            p.bytes_freed,
            len(p.errors),
        ]
        for p in s.last_passes
    ]
    lines.append(table(rows, header))
    return "\n".join(lines)


def _seconds(s: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size and s % size == 0:
            return f"{int(s // size)}{unit}"
    return f"{s:g}s"
