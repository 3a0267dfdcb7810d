"""Edge validation: the one set of checks every servicer applies to what a
caller sends, before any of it reaches the domain, PostgreSQL or a digest.

Each check raises :class:`~depot.services.common.errors.InvalidArgument`
with the field, so bad input is always a clean ``INVALID_ARGUMENT`` and never
an ``OverflowError``, ``RecursionError`` or a PostgreSQL encoding error
surfacing as ``INTERNAL``. The bounds, and why each exists:

- JSON (``*_json`` fields) and entry paths: the rules the SDK checks too,
  kept in ``depot.core`` (``json_values``, ``entry_paths``) and applied here
  through :func:`as_invalid_argument`.
- Text: no NUL anywhere (PostgreSQL ``text`` cannot hold it); identifiers
  (entry paths, names, aliases, run ids) also refuse every control character
  (C0 with tab/newline/CR, DEL, C1 U+0080..U+009F), since a newline in a path
  made two different manifests hash to the same artifact digest.
- Timestamps: within 0001-01-01 .. 9999-12-31 with 0 <= nanos < 1e9 (the
  range of ``google.protobuf.Timestamp`` and of Python's ``datetime``).
- Durations: ``|seconds| <= 315,576,000,000`` (10,000 years, the range of
  ``google.protobuf.Duration``), ``|nanos| < 1e9`` with the sign of seconds.
- TTLs: from one second to ``MAX_TTL`` (100 years), so ``commit_time + ttl``
  is always a date.
- Sizes: each in ``0 .. 2**63-1`` and their sum too (PostgreSQL ``bigint``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import ParamSpec, TypeVar

from google.protobuf import duration_pb2, timestamp_pb2
from google.protobuf.message import Message

from depot.core import entry_paths, json_values, names
from depot.core.entry_paths import control_char
from depot.core.errors import InvalidValue
from depot.core.limits import INT64_MAX

from .errors import InvalidArgument

# A TTL longer than this is refused: a century outlives any artifact, and it
# keeps commit_time + ttl far inside the dates Python and protobuf can hold.
MAX_TTL = timedelta(days=36525)
MIN_TTL = timedelta(seconds=1)

# google.protobuf.Timestamp: 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59.999999999Z.
MIN_TIMESTAMP_SECONDS = -62_135_596_800
MAX_TIMESTAMP_SECONDS = 253_402_300_799
# google.protobuf.Duration: about +-10,000 years.
MAX_DURATION_SECONDS = 315_576_000_000
_NANOS = 1_000_000_000

P = ParamSpec("P")
R = TypeVar("R")


def as_invalid_argument(rule: Callable[P, R]) -> Callable[P, R]:
    """A ``depot.core`` rule that raises the services' InvalidArgument instead of InvalidValue."""

    @functools.wraps(rule)
    def checked(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return rule(*args, **kwargs)
        except InvalidValue as e:
            raise InvalidArgument(e.message, field=e.field) from None

    return checked


# The shared rules (depot.core), as the servicers apply them.
parse_json = as_invalid_argument(json_values.parse_json)
check_entry_path = as_invalid_argument(entry_paths.check_entry_path)
check_name = as_invalid_argument(names.check_name)


def check_identifier(value: str, field: str, what: str = "value") -> str:
    """A string that names something (path, name, alias, id): no control characters."""
    ch = control_char(value)
    if ch is not None:
        raise InvalidArgument(
            f"{what} {value!r} contains the control character U+{ord(ch):04X}; control characters are not allowed",
            field=field,
        )
    return value


def check_text(value: str, field: str, max_chars: int | None = None) -> str:
    """Free text (descriptions): any character but NUL, at most ``max_chars``."""
    if "\0" in value:
        raise InvalidArgument(f"{field} contains a NUL character", field=field)
    if max_chars is not None and len(value) > max_chars:
        raise InvalidArgument(f"{field} is longer than {max_chars} characters", field=field)
    return value


def timestamp(ts: timestamp_pb2.Timestamp, field: str) -> datetime:
    """A request Timestamp as an aware UTC datetime, refused outside 0001..9999."""
    if not MIN_TIMESTAMP_SECONDS <= ts.seconds <= MAX_TIMESTAMP_SECONDS:
        raise InvalidArgument(f"{field} must be between 0001-01-01 and 9999-12-31", field=field)
    if not 0 <= ts.nanos < _NANOS:
        raise InvalidArgument(f"{field}.nanos must be in 0..999999999", field=field)
    out: datetime = ts.ToDatetime(tzinfo=UTC)
    return out


def optional_timestamp(msg: Message, field: str, name: str | None = None) -> datetime | None:
    """``msg.<field>`` via :func:`timestamp`, None when unset."""
    if not msg.HasField(field):
        return None
    return timestamp(getattr(msg, field), name or field)


def duration(d: duration_pb2.Duration, field: str) -> timedelta:
    """A request Duration as a timedelta, refused outside the protobuf range."""
    if not -MAX_DURATION_SECONDS <= d.seconds <= MAX_DURATION_SECONDS:
        raise InvalidArgument(f"{field} must be within +-{MAX_DURATION_SECONDS} seconds", field=field)
    if not -_NANOS < d.nanos < _NANOS or (d.seconds > 0 > d.nanos) or (d.seconds < 0 < d.nanos):
        raise InvalidArgument(f"{field}.nanos must be in -999999999..999999999 with the sign of seconds", field=field)
    out: timedelta = d.ToTimedelta()
    return out


def optional_duration(msg: Message, field: str, name: str | None = None) -> timedelta | None:
    """``msg.<field>`` via :func:`duration`, None when unset."""
    if not msg.HasField(field):
        return None
    return duration(getattr(msg, field), name or field)


def check_ttl(ttl: timedelta | None, field: str = "ttl") -> timedelta | None:
    """None (no TTL), or a TTL from one second to ``MAX_TTL`` (100 years).

    Sub-second or non-positive TTLs are errors, never silently "forever"."""
    if ttl is None:
        return None
    if ttl < MIN_TTL:
        raise InvalidArgument(
            f"{field} must be at least one second (got {ttl.total_seconds()}s); to keep versions forever, set no TTL",
            field=field,
        )
    if ttl > MAX_TTL:
        raise InvalidArgument(
            f"{field} must be at most {MAX_TTL.days} days (100 years); to keep versions forever, set no TTL",
            field=field,
        )
    return ttl


def check_size(n: int, field: str) -> int:
    """A byte size or count: 0 .. 2**63-1."""
    if not 0 <= n <= INT64_MAX:
        raise InvalidArgument(f"{field} must be between 0 and {INT64_MAX}", field=field)
    return n


def add_int64(total: int, n: int, field: str) -> int:
    """``total + n``, refused when the sum leaves PostgreSQL's bigint."""
    check_size(n, field)
    out = total + n
    if out > INT64_MAX:
        raise InvalidArgument(f"{field}: sizes sum past {INT64_MAX} bytes", field=field)
    return out


# --- answers: stored values always fit a reply --------------------------------

_MIN_DATETIME = datetime(1, 1, 1, tzinfo=UTC)
_MAX_DATETIME = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)


def add_clamped(start: datetime, delta: timedelta) -> datetime:
    """``start + delta``, clamped to the dates a Timestamp holds instead of
    overflowing (a row written before TTLs were bounded may hold any interval)."""
    try:
        out = start + delta
    except OverflowError:
        return _MAX_DATETIME if delta > timedelta(0) else _MIN_DATETIME
    return min(max(out, _MIN_DATETIME), _MAX_DATETIME) if out.tzinfo else out


def timestamp_pb(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    """A reply Timestamp; dates beyond the Timestamp range are clamped to it."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = min(max(value, _MIN_DATETIME), _MAX_DATETIME)
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(value)
    return ts


def duration_pb(value: timedelta) -> duration_pb2.Duration:
    """A reply Duration; intervals beyond the Duration range are clamped to it."""
    limit = timedelta(seconds=MAX_DURATION_SECONDS)
    d = duration_pb2.Duration()
    d.FromTimedelta(min(max(value, -limit), limit))
    return d


def interval_from_pg(value: tuple[int, int, int]) -> timedelta:
    """Decodes a PostgreSQL interval like asyncpg does (a month is 30 days),
    clamped to what a timedelta holds: PostgreSQL stores intervals of millions
    of years, which asyncpg's own decoder turns into an OverflowError."""
    months, days, microseconds = value
    try:
        return timedelta(days=months * 30 + days, microseconds=microseconds)
    except OverflowError:
        return timedelta.max if months * 30 + days > 0 else timedelta.min


def interval_to_pg(value: timedelta) -> tuple[int, int, int]:
    """Encodes a timedelta as a PostgreSQL interval (months, days, microseconds)."""
    return 0, value.days, value.seconds * 1_000_000 + value.microseconds
