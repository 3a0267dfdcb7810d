"""Streaming a stored manifest's entries, without holding them all.

``iter_entries`` reads ``ReadManifest`` with ``raw_blocks``: the server sends
the manifest's stored blocks as they are and the native codec decodes them
here (~4096 entries a block, checked field by field), so neither side does
per-entry protobuf work on a 10M-entry manifest. Given an ``EntryMaker``, the
decoder builds the caller's entry objects itself: converting each decoded
tuple in Python cost as much as decoding it. The first and last blocks
of a filtered read may hold entries outside the filter; they are trimmed
here. A stream that breaks transiently resumes after the last path
delivered, never from the start. ``names`` reads ask for exact paths in
entries mode, which the server answers by decoding only the blocks that can
hold them.
"""

from __future__ import annotations

import bisect
import functools
import operator
from collections.abc import Iterable, Iterator
from typing import Any, Protocol, TypeVar, overload

import grpc

from depot.manifest.v1 import manifest_pb2 as mpb
from depot.native import EntryMaker, ManifestEntry, ManifestError, decode_block

from ._client import Client
from ._exceptions import DepotError, from_rpc_error, is_transient

# Entries per yielded list at most: one stored block.
DEFAULT_BATCH = 4096
# Names per ReadManifest call (the server's limit).
MAX_NAMES = 1000
# "/" + 1: the paths under directory "p" are exactly those in ["p/", "p0").
_AFTER_SLASH = chr(ord("/") + 1)
_path = operator.attrgetter("path")
_T = TypeVar("_T")


def _entry(e: mpb.ManifestEntry, make: EntryMaker[Any] | None) -> Any:
    new = ManifestEntry if make is None else make
    return new(e.path, e.algorithm, e.digest, e.size, e.ref, e.version_id, e.extra_json)


def _trim(entries: list[Any], after: str, prefix: str) -> list[Any]:
    """The sorted ``entries`` after ``after`` and in directory ``prefix`` (bisected, not scanned)."""
    if not entries:
        return entries
    lo, hi = 0, len(entries)
    if after and entries[0].path <= after:
        lo = bisect.bisect_right(entries, after, key=_path)
    if not prefix:
        return entries if lo == 0 else entries[lo:]
    # A block wholly inside the directory (most of a large one's): kept as it is.
    if lo == 0 and entries[0].path.startswith(prefix + "/") and entries[-1].path.startswith(prefix + "/"):
        return entries
    exact = bisect.bisect_left(entries, prefix, lo, hi, key=_path)
    head = entries[exact : exact + 1] if exact < hi and entries[exact].path == prefix else []
    start = bisect.bisect_left(entries, prefix + "/", lo, hi, key=_path)
    end = bisect.bisect_left(entries, prefix + _AFTER_SLASH, start, hi, key=_path)
    return head + entries[start:end]


def _decoded(msg: mpb.EntryBatch, make: EntryMaker[Any] | None) -> Iterator[list[Any]]:
    if msg.entries:
        yield [_entry(e, make) for e in msg.entries]
    for raw in msg.blocks:
        try:
            yield decode_block(raw, make)
        except ManifestError as exc:
            raise DepotError(f"the manifest service sent a corrupt manifest block: {exc}") from None


def _chunks(entries: list[_T], batch: int) -> Iterator[list[_T]]:
    if len(entries) <= batch:
        yield entries
    else:
        for i in range(0, len(entries), batch):
            yield entries[i : i + batch]


@overload
def iter_entries(
    client: Client,
    entity: str,
    manifest_id: str,
    *,
    names: Iterable[str] | None = ...,
    prefix: str = ...,
    batch: int = ...,
    make: None = ...,
) -> Iterator[list[ManifestEntry]]: ...
@overload
def iter_entries(
    client: Client,
    entity: str,
    manifest_id: str,
    *,
    names: Iterable[str] | None = ...,
    prefix: str = ...,
    batch: int = ...,
    make: EntryMaker[_T],
) -> Iterator[list[_T]]: ...
def iter_entries(
    client: Client,
    entity: str,
    manifest_id: str,
    *,
    names: Iterable[str] | None = None,
    prefix: str = "",
    batch: int = DEFAULT_BATCH,
    make: EntryMaker[Any] | None = None,
) -> Iterator[list[Any]]:
    """A stored manifest's entries in path order, in non-empty lists of at most ``batch``.

    Args:
        client: the connection (its stream timeout bounds each attempt).
        entity: the entity that stored the manifest.
        manifest_id: the manifest's id (SHA-256 hex).
        names: only the entries at these exact paths; paths not in the
            manifest are absent from the answer. ``None`` is no name filter.
        prefix: only the entries in this directory: ``"data"`` keeps
            ``data`` and ``data/x``, never ``data2/x`` or ``data.csv``. A
            trailing ``/`` is ignored; ``""`` keeps all.
        batch: the most entries per yielded list.
        make: builds each entry (``None``: ``ManifestEntry`` tuples).

    Nothing is held between lists: a caller that drops each list iterates a
    manifest of any size in bounded memory. Closing the iterator early
    cancels the stream.

    Raises:
        InvalidArgumentError: a bad name or prefix (``field`` names it).
        DepotError: the manifest is missing, unreadable or corrupt, or the
            service stayed unreachable past the client's retry window.
    """
    if batch < 1:
        raise ValueError("batch must be at least 1")
    if names is not None:
        yield from _by_names(client, entity, manifest_id, sorted(set(names)), prefix, batch, make)
        return
    # As the server reads it; "/" alone is left for the server to refuse.
    prefix = prefix.removesuffix("/") or prefix
    last = ""
    while True:
        req = mpb.ReadManifestRequest(
            entity=entity, manifest_id=manifest_id, prefix=prefix, start_after=last, raw_blocks=True
        )
        # Retried until the first message arrives, as Client.stream is; the
        # stream timeout, not the unary one, bounds an attempt.
        call = client.retrying(functools.partial(_start, client, req))
        resumed_from = last
        try:
            for msg in call:
                for entries in _decoded(msg, make):
                    for chunk in _chunks(_trim(entries, last, prefix), batch):
                        if chunk:
                            last = chunk[-1].path
                            yield chunk
            return
        except grpc.RpcError as e:
            # Resume after what was delivered. An attempt that delivered
            # nothing is not retried again: a server breaking every stream
            # at once must not keep this loop going.
            if not (last != resumed_from and is_transient(e) and client.retries != 0):
                raise from_rpc_error(e) from None
        finally:
            call.cancel()


def _start(client: Client, req: mpb.ReadManifestRequest) -> _Started:
    return _Started(client.manifest.ReadManifest(req, metadata=client.auth, timeout=client.config.stream_timeout))


class _Call(Protocol):
    """What a server-streaming call returns: its messages, and a way to cancel it."""

    def __iter__(self) -> Iterator[mpb.EntryBatch]: ...
    def __next__(self) -> mpb.EntryBatch: ...
    def cancel(self) -> bool: ...


class _Started:
    """A stream whose first message has arrived (so ``retrying`` retries errors before it);
    iterating it yields that one first."""

    def __init__(self, call: _Call) -> None:
        self._call = call
        self._head = next(call, None)

    def __iter__(self) -> Iterator[mpb.EntryBatch]:
        if self._head is None:
            return
        head, self._head = self._head, None
        yield head
        yield from self._call

    def cancel(self) -> None:
        self._call.cancel()


def _by_names(
    client: Client,
    entity: str,
    manifest_id: str,
    names: list[str],
    prefix: str,
    batch: int,
    make: EntryMaker[Any] | None,
) -> Iterator[list[Any]]:
    for i in range(0, len(names), MAX_NAMES):
        req = mpb.ReadManifestRequest(
            entity=entity, manifest_id=manifest_id, names=names[i : i + MAX_NAMES], prefix=prefix
        )

        def collect(batches: Iterator[mpb.EntryBatch]) -> list[Any]:
            # A small answer: read whole, from scratch on each attempt.
            return [_entry(e, make) for msg in batches for e in msg.entries]

        found = client.read(client.manifest.ReadManifest, req, collect)
        if found:
            yield from _chunks(found, batch)


__all__ = ["DEFAULT_BATCH", "iter_entries"]
