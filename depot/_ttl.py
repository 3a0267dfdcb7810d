"""Time-to-live of artifact versions: a duration, forever (None), or the team default.

    art.ttl = timedelta(days=30)      # expires 30 days after commit
    art.ttl = None                    # never expires
    art.ttl = depot.ArtifactTTL.INHERIT   # follows the team's default TTL (the default)

A TTL under one second (or not positive) is an error, never silently
"forever". Whether members may set TTLs at all is a team setting.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime, timedelta

from depot.metadata.v1 import metadata_pb2 as pb

from ._exceptions import InvalidArgumentError


class ArtifactTTL(enum.Enum):
    """Special TTL values."""

    #: Follow the team's default TTL, whatever it is when the version is checked.
    INHERIT = "inherit"


TTL = timedelta | None | ArtifactTTL


def check(value: object) -> TTL:
    """Validates a TTL value the way the server will."""
    if value is None or value is ArtifactTTL.INHERIT:
        return value
    if not isinstance(value, timedelta):
        raise InvalidArgumentError("ttl must be a timedelta, None (forever) or depot.ArtifactTTL.INHERIT", field="ttl")
    if value < timedelta(seconds=1):
        raise InvalidArgumentError(
            f"ttl must be at least one second (got {value.total_seconds()}s); use None to keep the version forever",
            field="ttl",
        )
    return value


def to_request(msg: pb.CreateArtifactVersionRequest | pb.ArtifactVersion, value: TTL) -> None:
    """Sets ``ttl_mode`` (and ``ttl``) on a request message."""
    if value is ArtifactTTL.INHERIT:
        msg.ttl_mode = pb.TTL_MODE_INHERIT
    elif value is None:
        msg.ttl_mode = pb.TTL_MODE_FOREVER
    else:
        msg.ttl_mode = pb.TTL_MODE_DURATION
        msg.ttl.FromTimedelta(value)


def from_version(v: pb.ArtifactVersion) -> TTL:
    """The TTL in effect for a version: its own, the team default it inherits, or None."""
    return v.ttl.ToTimedelta() if v.HasField("ttl") else None


def remaining(v: pb.ArtifactVersion, now: datetime | None = None) -> timedelta | None:
    """Time until the version expires; None when it never does."""
    if not v.HasField("expire_time"):
        return None
    now = now or datetime.now(UTC)
    return max(v.expire_time.ToDatetime(tzinfo=UTC) - now, timedelta(0))
