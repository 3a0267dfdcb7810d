"""What a GC pass did: the domain form of gc.proto's CollectionReport (no grpc)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

# The counters a pass reports, in CollectionReport's order; each is a column
# of gc_passes and an OpenTelemetry counter (depot.gc.<name>).
COUNTERS = (
    "versions_expired",
    "versions_purged",
    "pending_purged",
    "manifests_deleted",
    "blobs_deleted",
    "bytes_freed",
    "blobs_scanned",
)
# Names of versions a report keeps (expired, purged; dry run: that would be).
SAMPLE = 20


@dataclass
class Phase:
    """One step of a pass: expire, purge, purge_pending, mark, sweep, prune."""

    name: str
    duration_s: float
    # What the step counted: versions expired or purged, blobs marked or deleted.
    items: int


@dataclass
class Report:
    ran: bool
    dry_run: bool
    entity: str = ""
    # "schedule" or "run_now".
    trigger: str = "run_now"
    # None for a pass that did not run.
    start_time: datetime | None = None
    duration_s: float = 0.0
    # False while the pass runs (a report GetStatus reads back), or for one
    # whose process died before it ended.
    finished: bool = True
    versions_expired: int = 0
    versions_purged: int = 0
    pending_purged: int = 0
    manifests_deleted: int = 0
    blobs_deleted: int = 0
    bytes_freed: int = 0
    blobs_scanned: int = 0
    sample: list[str] = field(default_factory=list)
    phases: list[Phase] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def add_sample(self, names: list[str]) -> None:
        self.sample.extend(names[: SAMPLE - len(self.sample)])

    def counters(self) -> dict[str, int]:
        return {name: int(getattr(self, name)) for name in COUNTERS}


__all__ = ["COUNTERS", "SAMPLE", "Phase", "Report"]
