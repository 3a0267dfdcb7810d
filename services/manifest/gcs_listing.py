"""GCS references: list a ``gs://`` prefix (or one object) concurrently into a manifest.

``write_gcs_reference(uri, writer, ...)`` adds one manifest entry per live
object, as W&B's GCS handler records it: path relative to the prefix (under
``name``), digest = the object's ``md5Hash`` (base64 md5 of the bytes, so the
entry's algorithm is ``md5`` and the SDK verifies a download against it),
size, ref ``gs://bucket/key`` and the object's ``generation`` as the version
id (W&B's ``extra.versionID``), which a download fetches.

It is the S3 lister with a GCS client under it: the same key-space planner
(``_s3_plan``: ``startOffset`` plays S3's StartAfter), the same ordered,
bounded-memory writer of concurrently listed units, the same retry policy.
Pages are parsed by the native ``parse_gcs_page`` into the S3 page layout
that ``ManifestWriter.add_page`` appends without a Python object per key.

Rules shared with S3: ``gs://b/data`` is the object ``data`` if it exists,
else the prefix ``data/`` (never ``data2/...``); ``gs://b/data/`` and
``gs://b`` are prefixes; folder placeholders (``.../``) are not entries;
zero-byte objects are; more than ``max_objects`` objects fail the
reference. ``gs://b/key#GENERATION`` pins one generation, W&B's spelling.

Composite objects (``gcloud storage objects compose``, parallel composite
uploads) have no ``md5Hash``: W&B records no digest for them, and nothing a
download could check would equal W&B's. They fail the reference with
FAILED_PRECONDITION naming the object, rather than recording a digest W&B
would not compute.
"""

from __future__ import annotations

import re
import time
from typing import Any

from depot.services.common.errors import FailedPrecondition, InvalidArgument, NotFound, TooManyObjects, Unavailable

from ._s3_plan import plan_units
from .gcs_http import GCSConfig, GCSHttpClient
from .s3_listing import (
    BUFFER_PAGES_PER_WORKER,
    PLAN_UNITS_PER_WORKER,
    ReferenceStats,
    _list_units,
    _objects_counter,
    _Ordered,
    reference_span,
)

__all__ = ["GCSConfig", "parse_gcs_uri", "write_gcs_reference"]

_GENERATION = re.compile(r"#([0-9]+)$")


def parse_gcs_uri(uri: str) -> tuple[str, str, str | None]:
    """``gs://bucket/key[#generation]`` → (bucket, key, generation).

    The key is taken literally (no percent-decoding), as W&B does; only a
    trailing ``#`` followed by digits is special.
    """
    if not uri.startswith("gs://"):
        raise InvalidArgument(f"not a gs:// URI: {uri!r}", field="uri")
    bucket, _, key = uri[5:].partition("/")
    generation: str | None = None
    m = _GENERATION.search(key)
    if m:
        key, generation = key[: m.start()], m.group(1)
    if not bucket or "#" in bucket or "?" in bucket:
        raise InvalidArgument(f"gs URI without a bucket: {uri!r}", field="uri")
    if generation is not None and (not key or key.endswith("/")):
        raise InvalidArgument(f"a generation pins one object; {uri!r} names a prefix", field="uri")
    return bucket, key, generation


def _composite(uri: str, ref: str) -> FailedPrecondition:
    return FailedPrecondition(
        f"{uri}: {ref} is a composite object: GCS keeps no md5Hash for it, and W&B's GCS digest is the "
        "md5Hash; upload it again as one object (or reference the others only)",
        field="uri",
    )


class _OrderedMd5(_Ordered):
    """The S3 lister's ordered writer, recording GCS objects as ``md5`` entries."""

    def page(self, unit: int, page: Any, body: bytes) -> None:
        bad = page.first_without_md5
        if bad >= 0 and not page.key(bad).endswith("/"):
            raise _composite(self.uri, self.ref_prefix + page.key(bad))
        if bad >= 0:  # a folder placeholder without md5: look past it
            for i in range(bad + 1, page.count):
                if not page.md5_hash(i) and not page.key(i).endswith("/"):
                    raise _composite(self.uri, self.ref_prefix + page.key(i))
        super().page(unit, page, body)

    def entry(self, unit: int, key: str, etag: str, size: int, version_id: str) -> None:
        if not etag and not key.endswith("/"):
            raise _composite(self.uri, self.ref_prefix + key)
        super().entry(unit, key, etag, size, version_id)

    def _add(self, key: str, etag: str, size: int, version_id: str) -> None:
        self.writer.add(
            self.path_prefix + key[self.strip :], "md5", etag, size, ref=self.ref_prefix + key, version_id=version_id
        )
        self.written += 1

    def _write(self, page: Any, kept: int) -> None:
        n = page.count
        if not n:
            return
        if kept == n and self._has_add_page:
            self.writer.add_page(page, self.strip, self.path_prefix, self.ref_prefix, algorithm="md5")
            self.written += n
            return
        for i in range(n):
            key = page.key(i)
            if not key.endswith("/"):
                self._add(key, page.etag(i), page.size(i), page.version_id(i))


async def write_gcs_reference(
    uri: str,
    writer: Any,
    *,
    name: str | None = None,
    max_objects: int = 10_000_000,
    concurrency: int = 32,
    config: GCSConfig,
) -> ReferenceStats:
    """Lists ``uri`` into ``writer`` (a native ``ManifestWriter``), in path order.

    Raises:
        InvalidArgument: malformed URI or arguments.
        NotFound: the bucket, or a pinned generation, does not exist.
        PermissionDenied: the credentials may not list or read it.
        FailedPrecondition: a composite object (no md5Hash) is under the prefix.
        TooManyObjects: more than ``max_objects`` objects (nothing is truncated).
        S3Unavailable: GCS kept failing (reason S3_UNAVAILABLE: a reference store).
        Unavailable: GCS answered something unexpected.
    """
    if max_objects < 0:
        raise InvalidArgument("max_objects must be >= 0", field="max_objects")
    if concurrency < 1:
        raise InvalidArgument("concurrency must be >= 1", field="concurrency")
    if name is not None:
        name = name.strip("/")
    bucket, key, generation = parse_gcs_uri(uri)
    t0 = time.perf_counter()
    with reference_span("depot.gcs.reference", {"gcs.bucket": bucket, "gcs.key": key}) as done:
        async with GCSHttpClient(config, bucket, concurrency=concurrency) as http:
            stats = await _write(http, uri, writer, bucket, key, generation, name, max_objects, concurrency, t0)
        done(stats)
        return stats


async def _write(
    http: GCSHttpClient,
    uri: str,
    writer: Any,
    bucket: str,
    key: str,
    generation: str | None,
    name: str | None,
    max_objects: int,
    concurrency: int,
    t0: float,
) -> ReferenceStats:
    ref_prefix = f"gs://{bucket}/"

    def stats(objects: int, single: bool, units: int, spilled: int) -> ReferenceStats:
        return ReferenceStats(
            uri,
            objects,
            single,
            True,
            units,
            http.requests,
            http.retries,
            spilled,
            time.perf_counter() - t0,
            http.throttles,
            http.limit.lowest,
        )

    if key and not key.endswith("/"):
        obj = await http.get_object(key, generation)
        if obj is None and generation is not None:
            raise NotFound(f"{uri}: no such object generation", field="uri")
        if obj is not None:
            if max_objects < 1:
                raise TooManyObjects(uri, max_objects)
            if not obj.md5_hash:
                raise _composite(uri, ref_prefix + key)
            path = name if name else key.rsplit("/", 1)[-1]
            writer.add(path, "md5", obj.md5_hash, obj.size, ref=ref_prefix + key, version_id=obj.generation)
            if _objects_counter is not None:
                _objects_counter.add(1)
            return stats(1, True, 0, 0)
        prefix = key + "/"
    else:
        prefix = key

    units = await plan_units(http, prefix, False, target=PLAN_UNITS_PER_WORKER * concurrency)
    from depot.native import parse_gcs_page

    ordered = _OrderedMd5(
        writer,
        len(units),
        strip=len(prefix),
        path_prefix=name + "/" if name else "",
        ref_prefix=ref_prefix,
        max_objects=max_objects,
        uri=uri,
        mem_pages=BUFFER_PAGES_PER_WORKER * concurrency,
        parse=parse_gcs_page,
        versioned=True,
    )
    try:
        await _list_units(http, units, False, ordered, concurrency)
    finally:
        ordered.close()
    if ordered.written != ordered.listed:  # pragma: no cover - internal invariant
        raise Unavailable(f"{uri}: listing ended with {ordered.listed - ordered.written} unwritten objects")
    return stats(ordered.written, False, len(units), ordered.spilled)
