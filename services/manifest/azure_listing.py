"""Azure Blob references: list a prefix (or one blob) into a manifest, as W&B records it.

``write_azure_reference(uri, writer, ...)`` lists
``https://<account>.blob.core.windows.net/<container>/<name>`` (or
``az://<account>/<container>/<name>``) and adds one entry per blob: path
relative to the prefix (under ``name``), algorithm ``etag``, digest = the
blob's ETag without quotes, size, ref = the blob's URI and, where the account
keeps versions, its version id. That is W&B's Azure handler's entry (digest =
``etag.strip('"')``, ``extra = {etag, versionID}``), so the artifact digest
equals W&B's for the same blobs. Content-MD5 is not recorded: Azure returns
it with every GET of the blob, which the SDK checks the bytes against (the
ETag, checked with ``If-Match``, ties that header to the recorded blob).

Rules shared with S3 (``s3_listing``): ``.../data`` is the blob ``data`` if it
exists (and is not a directory stub), else the prefix ``data/`` — never
``data-old/…``; folder markers (names ending ``/``) and ADLS directory stubs
are not entries (the parser drops blobs whose metadata says
``hdi_isfolder=true``, as W&B does); zero-byte blobs are; more than ``max_objects`` blobs is
``TooManyObjects``, never a truncated manifest.

How it is fast, and how concurrent
----------------------------------
Pages are parsed by the native ``parse_list_page`` (it reads List Blobs as well
as S3's listings) and appended by ``ManifestWriter.add_page`` without a
Python object per blob. List Blobs pages through an opaque ``NextMarker``
and has no StartAfter, so one prefix is one serial chain of requests; the
key space cannot be split at arbitrary characters as ``_s3_plan`` does for
S3. What the API does allow is a directory fan-out: one ``delimiter=/`` page
of the prefix names its sub-prefixes; when that level fits one page, every
sub-prefix is listed concurrently (bounded by ``concurrency``) and written in
name order through ``s3_listing``'s ordered writer (which buffers, then
spills, later prefixes' pages). A flat prefix, or a level too wide for one
page, is listed as a single serial chain.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from depot.core.azure_blob import AzureUriError, BlobAddress, parse_azure_uri, redact
from depot.services.common.errors import InvalidArgument, NotFound, TooManyObjects, Unavailable

from .azure_http import AzureConfig, AzureHttpClient
from .s3_listing import BUFFER_PAGES_PER_WORKER, ReferenceStats, _Ordered

__all__ = ["AzureConfig", "parse_reference_uri", "write_azure_reference"]


def parse_reference_uri(uri: str) -> BlobAddress:
    """The address of an Azure reference URI, or ``InvalidArgument`` naming ``uri`` (redacted)."""
    try:
        return parse_azure_uri(uri)
    except AzureUriError as err:
        raise InvalidArgument(str(err), field="uri") from None


async def write_azure_reference(
    uri: str,
    writer: Any,
    *,
    name: str | None = None,
    max_objects: int = 10_000_000,
    concurrency: int = 32,
    config: AzureConfig,
) -> ReferenceStats:
    """Lists ``uri`` into ``writer`` (a native ``ManifestWriter``), in path order.

    Raises:
        InvalidArgument: malformed URI or arguments.
        NotFound: the container, or a pinned blob version, does not exist.
        PermissionDenied: the server's credential may not read or list it.
        TooManyObjects: more than ``max_objects`` blobs (nothing is truncated).
        Unavailable: Azure kept failing, or answered something unexpected.
    """
    if max_objects < 0:
        raise InvalidArgument("max_objects must be >= 0", field="max_objects")
    if concurrency < 1:
        raise InvalidArgument("concurrency must be >= 1", field="concurrency")
    addr = parse_reference_uri(uri)
    shown = redact(uri)
    if name is not None:
        name = name.strip("/")
    t0 = time.perf_counter()
    async with AzureHttpClient(config, addr, concurrency=concurrency) as http:

        def stats(objects: int, single: bool, versioned: bool, units: int, spilled: int) -> ReferenceStats:
            wall = time.perf_counter() - t0
            return ReferenceStats(
                shown, objects, single, versioned, units, http.requests, http.retries, spilled, wall, 0, concurrency
            )

        key = addr.name
        if addr.version_id or (key and not key.endswith("/")):
            head = await http.head_blob(key, addr.version_id)
            if head is None and addr.version_id:
                raise NotFound(f"{shown}: no such blob version", field="uri")
            if head is not None and not head.directory:
                if max_objects < 1:
                    raise TooManyObjects(shown, max_objects)
                path = name if name else key.rsplit("/", 1)[-1]
                vid = head.version_id or addr.version_id
                writer.add(path, "etag", head.etag, head.size, ref=addr.ref(key), version_id=vid)
                return stats(1, True, bool(vid), 0, 0)
            prefix = key + "/"
        else:
            prefix = key
        ordered = await _list(http, addr, prefix, name, max_objects, concurrency, writer, shown)
        if ordered.written != ordered.listed:  # pragma: no cover - internal invariant
            raise Unavailable(f"{shown}: listing ended with {ordered.listed - ordered.written} unwritten blobs")
        return stats(ordered.written, False, ordered.versioned, len(ordered.done), ordered.spilled)


async def _list(
    http: AzureHttpClient,
    addr: BlobAddress,
    prefix: str,
    name: str | None,
    max_objects: int,
    concurrency: int,
    writer: Any,
    shown: str,
) -> _Ordered:
    from depot.native import parse_list_page

    top, _ = await http.list_page(prefix, "", delimiter="/")
    # A fan-out needs the whole level in hand (there is no StartAfter to
    # resume a level between sub-prefixes); a level wider than one page, or
    # with fewer than two sub-prefixes, is listed flat.
    units: list[str | range]
    if not top.is_truncated and len(top.common_prefixes) > 1 and concurrency > 1:
        units = _level_units(top.keys(), top.common_prefixes)
    else:
        units = [prefix]
    ordered = _Ordered(
        writer,
        len(units),
        strip=len(prefix),
        path_prefix=name + "/" if name else "",
        ref_prefix=addr.ref_prefix(),
        max_objects=max_objects,
        uri=shown,
        mem_pages=BUFFER_PAGES_PER_WORKER * concurrency,
        parse=parse_list_page,
        # A versioned account reports a VersionId with every current blob.
        versioned=top.count > 0 and bool(top.version_id(0)),
    )
    try:
        await _run_units(http, units, top, ordered, concurrency)
    finally:
        ordered.close()
    return ordered


def _level_units(keys: list[str], prefixes: list[str]) -> list[str | range]:
    """One level's blobs and sub-prefixes as ordered units.

    Blobs and sub-prefixes interleave in name order; a run of the level's
    blobs between two sub-prefixes (a ``range`` of the page's entries) is
    one unit, written from the page already in hand; each sub-prefix is one.
    """
    units: list[str | range] = []
    i = 0
    for p in prefixes:
        j = i
        while j < len(keys) and keys[j] < p:
            j += 1
        if j > i:
            units.append(range(i, j))
        units.append(p)
        i = j
    if i < len(keys):
        units.append(range(i, len(keys)))
    return units


async def _run_units(
    http: AzureHttpClient, units: list[str | range], top: Any, ordered: _Ordered, concurrency: int
) -> None:
    async def run_unit(i: int) -> None:
        u = units[i]
        if isinstance(u, range):
            for j in u:
                ordered.entry(i, top.key(j), top.etag(j), top.size(j), top.version_id(j))
        else:
            page, body = await http.list_page(u, "")
            ordered.page(i, page, body)
            while page.is_truncated:
                page, body = await http.list_page(u, page.next_continuation_token)
                ordered.page(i, page, body)
        ordered.finish(i)

    next_unit = 0

    async def worker() -> None:
        nonlocal next_unit
        while next_unit < len(units):
            i = next_unit
            next_unit += 1
            await run_unit(i)

    tasks = [asyncio.create_task(worker()) for _ in range(min(concurrency, len(units)))]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
