"""Edge validation: the one set of checks every servicer applies to what a
caller sends, before any of it reaches the domain, PostgreSQL or a digest.

Each check raises :class:`~depot.services.common.errors.InvalidArgument`
with the field, so bad input is always a clean ``INVALID_ARGUMENT`` and never
an ``OverflowError``, ``RecursionError`` or a PostgreSQL encoding error
surfacing as ``INTERNAL``. The bounds, and why each exists:

- JSON (``*_json`` fields): at most ``MAX_JSON_DEPTH`` levels (deeper input
  overflowed the parser's recursion), finite numbers only (``NaN``,
  ``Infinity`` and ``1e999`` are not JSON values PostgreSQL accepts), and no
  NUL or lone surrogates in strings or keys (``jsonb`` cannot hold them).
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

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf import duration_pb2, timestamp_pb2
from google.protobuf.message import Message

from .errors import InvalidArgument

INT64_MAX = (1 << 63) - 1
MAX_JSON_DEPTH = 64
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

_CONTROL = frozenset([*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)])
_CONTROL_TABLE = {c: None for c in _CONTROL}


def control_char(value: str) -> str | None:
    """The first control character (C0, DEL, C1) in ``value``, or None."""
    # translate() drops every control character in one C-level pass, so the
    # common clean case costs one comparison of lengths.
    if len(value.translate(_CONTROL_TABLE)) == len(value):
        return None
    return next(ch for ch in value if ord(ch) in _CONTROL)


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


def _bad_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text} is out of range")
    return value


def _check_string(s: str, field: str) -> None:
    if "\0" in s:
        raise InvalidArgument(f"{field} holds a string with a NUL character", field=field)
    try:
        s.encode()
    except UnicodeEncodeError:
        raise InvalidArgument(f"{field} holds a string with an unpaired surrogate", field=field) from None


def _check_tree(value: Any, field: str, max_depth: int) -> None:
    # Iterative, so a tree exactly at the limit costs no recursion either.
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            if depth > max_depth:
                raise InvalidArgument(f"{field} is nested deeper than {max_depth} levels", field=field)
            for k, v in node.items():
                _check_string(k, field)
                stack.append((v, depth + 1))
        elif isinstance(node, list):
            if depth > max_depth:
                raise InvalidArgument(f"{field} is nested deeper than {max_depth} levels", field=field)
            stack.extend((v, depth + 1) for v in node)
        elif isinstance(node, str):
            _check_string(node, field)


def parse_json(
    text: str,
    field: str,
    *,
    max_bytes: int | None = None,
    max_depth: int = MAX_JSON_DEPTH,
    object_only: bool = False,
) -> Any:
    """The JSON value of ``text``, refused unless PostgreSQL ``jsonb`` and our
    own ``json.dumps`` can hold it (see the module docstring)."""
    if max_bytes is not None and len(text.encode(errors="surrogatepass")) > max_bytes:
        raise InvalidArgument(f"{field} is larger than {max_bytes} bytes", field=field)
    try:
        value = json.loads(text, parse_constant=_bad_constant, parse_float=_finite_float)
    except RecursionError:
        raise InvalidArgument(f"{field} is nested deeper than {max_depth} levels", field=field) from None
    except ValueError as e:
        raise InvalidArgument(f"{field} is not valid JSON: {e}", field=field) from None
    _check_tree(value, field, max_depth)
    if object_only and not isinstance(value, dict):
        raise InvalidArgument(f"{field} must be a JSON object", field=field)
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
