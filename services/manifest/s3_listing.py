"""S3 references: list a prefix (or one object) concurrently into a manifest.

``write_s3_reference(uri, writer, ...)`` lists ``s3://bucket/key`` and adds one
manifest entry per live object: path relative to the prefix (under ``name``),
algorithm ``etag``, digest = ETag without quotes, size, ref
``s3://bucket/key`` and, in a versioned bucket, the version id. The artifact
digest therefore equals W&B's for the same objects.

How it is fast
--------------
botocore is used for what it is good at — credentials, region/endpoint
resolution, SigV4 signing and the one-off calls (HeadObject,
GetBucketVersioning) — but never parses a listing page (≈100 ms of CPU per
1000 keys). Listing pages are signed GETs sent with aiohttp and parsed by the
native ``parse_list_page`` into columnar pages that the native
``ManifestWriter.add_page`` appends without a Python object per key.

Concurrency comes from splitting the key space into *prefix units* on
character boundaries (see ``_s3_plan.py``): a unit is "every key that starts
with ``p``" (or one exact key), so listing a unit with ``Prefix=p`` never
overshoots into its neighbour, and units are contiguous, ordered key
intervals. For nested layouts this descends into the directory structure like
a delimiter fan-out; for flat prefixes it splits on the key alphabet found by
cheap ``max-keys=1`` StartAfter probes. Units are listed concurrently (bounded)
and their pages are written in global key order: the head unit streams
straight into the writer; later units buffer parsed pages in memory up to a
budget and spill raw page bodies to an anonymous temp file beyond it, so
memory stays bounded whatever the skew.

Every request is retried with exponential backoff and full jitter on
SlowDown/503, 500/502/504, timeouts and dropped connections; a unit resumes
from its last listed key (StartAfter / key-marker), never from scratch.

Faults (policy in ``_s3_http.py``): throttling lowers the number of requests
in flight (AIMD: halve on SlowDown, grow back by one per limit's worth of
successes) and never aborts a listing that is still making progress: at 50%
SlowDown a 1M listing completes in one pass instead of aborting on a page's
12th failure and being listed again by the SDK. A bucket that answers
nothing successfully for ``stall_timeout`` (10 s) fails the reference with
``S3Unavailable`` naming the S3 error code and the bucket; 403 and
NoSuchBucket fail at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import tempfile
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from depot.services.common import otel_steps
from depot.services.common.errors import (
    InvalidArgument,
    NotFound,
    TooManyObjects,
    Unavailable,
)

from ._s3_http import S3Config, S3HttpClient
from ._s3_plan import ExactUnit, PrefixUnit, plan_units

try:  # opentelemetry-api is a dependency; keep the lister usable without it.
    from opentelemetry import metrics as _otel_metrics
    from opentelemetry import trace as _otel_trace

    _tracer: Any = _otel_trace.get_tracer("depot.services.manifest.s3_listing")
    _objects_counter: Any = _otel_metrics.get_meter("depot.services.manifest").create_counter(
        "depot.references.objects_listed", unit="{object}", description="S3 objects listed into manifests"
    )
    _pages_counter: Any = _otel_metrics.get_meter("depot.services.manifest").create_counter(
        "depot.references.list_pages", unit="{page}", description="S3 listing pages fetched"
    )
except ImportError:  # pragma: no cover
    _tracer = None
    _objects_counter = _pages_counter = None

__all__ = [
    "FanOut",
    "S3Config",
    "S3Plan",
    "ReferenceStats",
    "parse_s3_uri",
    "s3_client",
    "units_from_json",
    "write_s3_reference",
    "write_s3_units",
]

# Parsed pages of later units held in memory per listing worker before spilling
# raw bodies to a temp file (a native 1000-key page is ~100-200 KiB).
BUFFER_PAGES_PER_WORKER = 16
# The planner splits until there are at least this many large units per worker.
PLAN_UNITS_PER_WORKER = 4


@dataclasses.dataclass(frozen=True)
class ReferenceStats:
    """What one ``write_s3_reference`` call did."""

    uri: str
    objects: int
    single_object: bool
    versioned: bool
    units: int
    requests: int
    retries: int
    spilled_pages: int
    wall_s: float
    throttles: int = 0  # requests answered SlowDown/503/429
    lowest_concurrency: int = 0  # the AIMD limit's low point (= concurrency when never throttled)


@contextlib.contextmanager
def reference_span(name: str, attributes: dict[str, str]) -> Iterator[Callable[[ReferenceStats], None]]:
    """The span around one reference's listing (a no-op without OpenTelemetry);
    the caller hands the listing's stats to the function it yields."""
    if _tracer is None:  # pragma: no cover - opentelemetry-api is a dependency
        yield lambda stats: None
        return
    with _tracer.start_as_current_span(name, attributes=attributes) as span:

        def done(stats: ReferenceStats) -> None:
            span.set_attribute("depot.objects", stats.objects)
            span.set_attribute("depot.requests", stats.requests)
            span.set_attribute("depot.retries", stats.retries)
            span.set_attribute("depot.units", stats.units)
            span.set_attribute("depot.throttles", stats.throttles)
            span.set_attribute("depot.lowest_concurrency", stats.lowest_concurrency)

        yield done


@dataclasses.dataclass(frozen=True)
class S3Plan:
    """A planned prefix listing: the key ranges (units, in key order) and how
    their keys become entries. What a fan-out hands to other replicas."""

    uri: str
    bucket: str
    prefix: str
    path_prefix: str
    versioned: bool
    max_objects: int
    units: list[Any]

    def estimate(self) -> int:
        """At least this many keys (see ``_weight``)."""
        return sum(_weight(u) for u in self.units)

    def ranges(self, n: int) -> list[list[list[str]]]:
        """The units in ``n`` (or fewer) consecutive runs of about equal
        estimated size, each unit as ``["k", key]`` or ``["p", prefix]``."""
        weights = [_weight(u) for u in self.units]
        total = sum(weights) or 1
        out: list[list[list[str]]] = [[]]
        acc = 0
        for u, w in zip(self.units, weights):
            if out[-1] and acc >= total * len(out) / n:
                out.append([])
            out[-1].append(["k", u.key] if isinstance(u, ExactUnit) else ["p", u.prefix])
            acc += w
        return out


def _weight(u: Any) -> int:
    """Keys a unit holds, at least: one for an exact key, the count of a
    prefix the planner saw whole, one page for one it saw truncated or not at all."""
    if isinstance(u, ExactUnit):
        return 1
    if u.first is not None and not u.first[0].is_truncated:
        return int(u.first[0].count)
    return 1000


def units_from_json(data: list[list[str]]) -> list[Any]:
    """``S3Plan.ranges`` units back into planner units (their first page is listed again)."""
    out: list[Any] = []
    for kind, value in data:
        out.append(ExactUnit(value) if kind == "k" else PrefixUnit(value, splittable=False))
    return out


# A fan-out takes a planned listing and writes it into the writer through
# other replicas, returning the number of objects written, or None to have
# this process list it (a small listing).
FanOut = Callable[[S3Plan, Any], Awaitable[int | None]]


def parse_s3_uri(uri: str) -> tuple[str, str, str | None]:
    """``s3://bucket/key[?versionId=V]`` → (bucket, key, version_id).

    The key is taken literally (no percent-decoding; ``#`` and other
    characters are part of the key), as W&B does; only a trailing
    ``?versionId=...`` is special.
    """
    if not uri.startswith("s3://"):
        raise InvalidArgument(f"not an s3:// URI: {uri!r}", field="uri")
    rest = uri[5:]
    bucket, _, key = rest.partition("/")
    version_id: str | None = None
    head, sep, vid = key.rpartition("?versionId=")
    if sep:
        key, version_id = head, vid
        if not version_id:
            raise InvalidArgument(f"empty versionId in {uri!r}", field="uri")
    if not bucket or "?" in bucket:
        raise InvalidArgument(f"s3 URI without a bucket: {uri!r}", field="uri")
    if version_id is not None and (not key or key.endswith("/")):
        raise InvalidArgument(f"versionId pins one object; {uri!r} names a prefix", field="uri")
    return bucket, key, version_id


class _Ordered:
    """Writes pages of units in unit order; buffers (then spills) pages of later units."""

    def __init__(
        self,
        writer: Any,
        n_units: int,
        *,
        strip: int,
        path_prefix: str,
        ref_prefix: str,
        max_objects: int,
        uri: str,
        mem_pages: int,
        parse: Any,
        versioned: bool,
    ) -> None:
        self.writer = writer
        self.versioned = versioned
        self.strip = strip
        self.path_prefix = path_prefix
        self.ref_prefix = ref_prefix
        self.max_objects = max_objects
        self.uri = uri
        self.mem_pages = mem_pages
        self.parse = parse
        self.head = 0
        self.queues: list[deque[Any]] = [deque() for _ in range(n_units)]
        self.done = [False] * n_units
        self.mem_buffered = 0
        self.listed = 0  # objects accepted so far (written + buffered)
        self.written = 0
        self.spilled = 0
        self._spill: Any = None
        self._spill_end = 0
        self._has_add_page = hasattr(writer, "add_page")

    def close(self) -> None:
        if self._spill is not None:
            self._spill.close()
            self._spill = None

    # -- accepting -------------------------------------------------------------------------

    def _kept(self, page: Any) -> int:
        """Entries of the page that become manifest entries (folder markers ``…/`` do not)."""
        if not page.count:
            return 0
        keys = page.keys()
        return sum(1 for k in keys if not k.endswith("/"))

    def page(self, unit: int, page: Any, body: bytes) -> None:
        kept = self._kept(page)
        self.listed += kept
        if self.listed > self.max_objects:
            raise TooManyObjects(self.uri, self.max_objects)
        if _objects_counter is not None and kept:
            _objects_counter.add(kept)
        if unit == self.head:
            self._write(page, kept)
            return
        q = self.queues[unit]
        if self.mem_buffered < self.mem_pages:
            q.append((page, kept))
            self.mem_buffered += 1
        else:
            if self._spill is None:
                self._spill = tempfile.TemporaryFile(prefix="depot-s3-spill-")
            self._spill.seek(self._spill_end)
            self._spill.write(body)
            q.append((self._spill_end, len(body), kept))
            self._spill_end += len(body)
            self.spilled += 1

    def entry(self, unit: int, key: str, etag: str, size: int, version_id: str) -> None:
        if key.endswith("/"):
            return
        self.listed += 1
        if self.listed > self.max_objects:
            raise TooManyObjects(self.uri, self.max_objects)
        if unit == self.head:
            self._add(key, etag, size, version_id)
        else:
            self.queues[unit].append((key, etag, size, version_id))

    def finish(self, unit: int) -> None:
        self.done[unit] = True
        while self.head < len(self.done) and self.done[self.head]:
            self.head += 1
            if self.head < len(self.done):
                self._drain(self.head)

    def _drain(self, unit: int) -> None:
        q = self.queues[unit]
        while q:
            item = q.popleft()
            if len(item) == 2:
                self.mem_buffered -= 1
                self._write(*item)
            elif len(item) == 3:
                off, n, kept = item
                self._spill.flush()
                body = os.pread(self._spill.fileno(), n, off)
                self._write(self.parse(body), kept)
            else:
                self._add(*item)

    # -- writing ---------------------------------------------------------------------------

    def _add(self, key: str, etag: str, size: int, version_id: str) -> None:
        if version_id == "null" and not self.versioned:
            version_id = ""
        self.writer.add(
            self.path_prefix + key[self.strip :], "etag", etag, size, ref=self.ref_prefix + key, version_id=version_id
        )
        self.written += 1

    def _write(self, page: Any, kept: int) -> None:
        n = page.count
        if not n:
            return
        if kept == n and self._has_add_page:
            self.writer.add_page(page, self.strip, self.path_prefix, self.ref_prefix, bucket_versioned=self.versioned)
            self.written += n
            return
        for i in range(n):
            key = page.key(i)
            if key.endswith("/"):
                continue
            self._add(key, page.etag(i), page.size(i), page.version_id(i))


async def write_s3_reference(
    uri: str,
    writer: Any,
    *,
    name: str | None = None,
    max_objects: int = 10_000_000,
    concurrency: int = 32,
    session_config: S3Config,
    fan_out: FanOut | None = None,
) -> ReferenceStats:
    """Lists ``uri`` into ``writer`` (a native ``ManifestWriter``), in path order.

    ``s3://b/data`` is the object ``data`` if it exists, else the prefix
    ``data/`` (never ``data-old/…`` nor ``data.csv``); ``s3://b/data/`` and
    ``s3://b`` are prefixes; ``?versionId=`` pins one object version.

    Raises:
        InvalidArgument: malformed URI or arguments.
        NotFound: the bucket, or a pinned object/version, does not exist.
        PermissionDenied: the credentials may not read or list it.
        TooManyObjects: more than ``max_objects`` objects (nothing is truncated).
        S3Unavailable: S3 kept failing (no success for ``stall_timeout``, or
            one request past its budget); names the S3 error code and bucket.
        Unavailable: S3 answered something unexpected.
    """
    if max_objects < 0:
        raise InvalidArgument("max_objects must be >= 0", field="max_objects")
    if concurrency < 1:
        raise InvalidArgument("concurrency must be >= 1", field="concurrency")
    if name is not None:
        name = name.strip("/")
    bucket, key, version_id = parse_s3_uri(uri)
    t0 = time.perf_counter()
    with reference_span("depot.s3.reference", {"s3.bucket": bucket, "s3.key": key}) as done:
        async with S3HttpClient(session_config, bucket, concurrency=concurrency) as http:
            stats = await _write(
                http, uri, writer, bucket, key, version_id, name, max_objects, concurrency, t0, fan_out
            )
        done(stats)
        return stats


async def _write(
    http: S3HttpClient,
    uri: str,
    writer: Any,
    bucket: str,
    key: str,
    version_id: str | None,
    name: str | None,
    max_objects: int,
    concurrency: int,
    t0: float,
    fan_out: FanOut | None = None,
) -> ReferenceStats:
    ref_prefix = f"s3://{bucket}/"

    def single(etag: str, size: int, vid: str) -> ReferenceStats:
        if max_objects < 1:
            raise TooManyObjects(uri, max_objects)
        path = name if name else key.rsplit("/", 1)[-1]
        writer.add(path, "etag", etag, size, ref=ref_prefix + key, version_id=vid)
        if _objects_counter is not None:
            _objects_counter.add(1)
        return ReferenceStats(
            uri,
            1,
            True,
            bool(vid),
            0,
            http.requests,
            http.retries,
            0,
            time.perf_counter() - t0,
            http.throttles,
            http.limit.lowest,
        )

    if version_id is not None:
        head = await http.head_object(key, version_id)
        if head is None:
            raise NotFound(f"{uri}: no such object version", field="uri")
        return single(head[0], head[1], head[2] or version_id)
    if key and not key.endswith("/"):
        head = await http.head_object(key, None)
        if head is not None:
            return single(*head)
        prefix = key + "/"
    else:
        prefix = key

    versioned = await http.bucket_versioned()
    units = await plan_units(http, prefix, versioned, target=PLAN_UNITS_PER_WORKER * concurrency)
    n = len(units)
    plan = S3Plan(uri, bucket, prefix, name + "/" if name else "", versioned, max_objects, units)
    written = await fan_out(plan, writer) if fan_out is not None else None
    spilled = 0
    if written is None:
        written, spilled = await _list_plan(http, plan, writer, concurrency)
    return ReferenceStats(
        uri,
        written,
        False,
        versioned,
        n,
        http.requests,
        http.retries,
        spilled,
        time.perf_counter() - t0,
        http.throttles,
        http.limit.lowest,
    )


async def _list_plan(http: S3HttpClient, plan: S3Plan, writer: Any, concurrency: int) -> tuple[int, int]:
    """Lists the plan's units into ``writer`` in key order: (objects written, pages spilled)."""
    from depot.native import parse_list_page

    ordered = _Ordered(
        writer,
        len(plan.units),
        strip=len(plan.prefix),
        path_prefix=plan.path_prefix,
        ref_prefix=f"s3://{plan.bucket}/",
        max_objects=plan.max_objects,
        uri=plan.uri,
        mem_pages=BUFFER_PAGES_PER_WORKER * concurrency,
        parse=parse_list_page,
        versioned=plan.versioned,
    )
    try:
        await _list_units(http, plan.units, plan.versioned, ordered, concurrency)
    finally:
        ordered.close()
    if ordered.written != ordered.listed:  # pragma: no cover - internal invariant
        raise Unavailable(f"{plan.uri}: listing ended with {ordered.listed - ordered.written} unwritten objects")
    return ordered.written, ordered.spilled


def s3_client(config: S3Config, bucket: str, *, concurrency: int) -> S3HttpClient:
    """A connection to ``bucket`` (``async with``) that ``write_s3_units`` calls may share:
    opening one costs a botocore client, far more than listing a small range."""
    return S3HttpClient(config, bucket, concurrency=concurrency)


async def write_s3_units(plan: S3Plan, writer: Any, *, http: S3HttpClient, concurrency: int) -> int:
    """Lists one part of a fanned-out plan (``plan.units``, a run of its key
    ranges) into ``writer`` over ``http`` (``s3_client``); returns the objects written."""
    written, _ = await _list_plan(http, plan, writer, concurrency)
    return written


async def _list_units(
    http: S3HttpClient, units: list[Any], versioned: bool, ordered: _Ordered, concurrency: int
) -> None:
    next_unit = 0

    async def run_unit(i: int) -> None:
        u = units[i]
        if isinstance(u, ExactUnit):
            page, _body = await http.list_page(u.key, versioned=versioned, max_keys=1)
            if page.count and page.key(0) == u.key:
                ordered.entry(i, u.key, page.etag(0), page.size(0), page.version_id(0))
            ordered.finish(i)
            return
        assert isinstance(u, PrefixUnit)
        after, vid_marker = "", ""
        if u.first is not None:
            page, body = u.first
            u.first = None  # let it be freed once written
            ordered.page(i, page, body)
            if not page.is_truncated:
                ordered.finish(i)
                return
            after, vid_marker = _resume(page, versioned)
        while True:
            page, body = await http.list_page(u.prefix, versioned=versioned, after=after, vid_marker=vid_marker)
            if _pages_counter is not None:
                _pages_counter.add(1)
            ordered.page(i, page, body)
            if not page.is_truncated:
                break
            after, vid_marker = _resume(page, versioned)
        ordered.finish(i)

    async def worker() -> None:
        nonlocal next_unit
        while next_unit < len(units):
            i = next_unit
            next_unit += 1
            # One span per key range, under the reference's span.
            with otel_steps.step("depot.s3.list_range", {"depot.s3.unit": i}):
                await run_unit(i)

    tasks = [asyncio.create_task(worker()) for _ in range(min(concurrency, len(units)))]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def _resume(page: Any, versioned: bool) -> tuple[str, str]:
    """Where the next page of a truncated listing starts (key, version-id marker)."""
    if versioned:
        if not page.next_key_marker:
            raise Unavailable("S3 returned a truncated version listing without NextKeyMarker")
        return page.next_key_marker, page.next_version_id_marker
    if not page.last_key:
        raise Unavailable("S3 returned a truncated empty listing page")
    return page.last_key, ""
