"""Bounded in-process caches whose entries carry their own deadline.

The services keep short-lived answers (an API key's owner, a caller's role,
a CheckAccess verdict) to save a query or a round trip per RPC. Such a cache
must stay bounded under a flood of distinct keys, and must degrade gently
when full: clearing everything would drop every hot entry at once and send
all traffic to the database together. So a full cache drops expired entries
first and then the least recently used ones, one per insert
(``cachetools.TLRUCache``), and an entry is never served past the deadline
it was stored with: the revocation bounds in credentials.py rest on that.

Each cache counts hits, misses and evictions in ``stats`` and reports them
through telemetry's cache hook (``depot.cache.lookups`` and
``depot.cache.evictions``, by cache name: docs/operations.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from cachetools import TLRUCache

from . import cache_metrics

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass
class CacheStats:
    """Counters of one cache since the process started."""

    name: str
    maxsize: int
    hits: int = 0
    misses: int = 0
    # Entries dropped to make room (least recently used first), not those
    # that simply expired: a steady non-zero rate says the cache is too small.
    evictions: int = 0
    size: int = 0


class _Entries(TLRUCache[K, tuple[float, V]]):
    """A TLRUCache that counts what it evicts for room."""

    def __init__(
        self, maxsize: int, timer: Callable[[], float], stats: CacheStats, counter: cache_metrics.CacheCounter
    ) -> None:
        # The deadline is stored with the value: "good until", fixed when the
        # answer was read, not when it was stored (a role is stored only once
        # its transaction commits, later).
        super().__init__(maxsize, ttu=lambda _key, value, _now: value[0], timer=timer)
        self._stats = stats
        self._counter = counter

    def popitem(self) -> tuple[K, tuple[float, V]]:
        item = super().popitem()
        self._stats.evictions += 1
        self._counter.evicted()
        return item


class ExpiringCache(Generic[K, V]):
    """At most ``maxsize`` entries, each served only until its deadline (``timer`` seconds).

    ``counter``: where hits, misses and evictions are reported (default:
    telemetry's hook for ``name`` on the global meter provider).
    """

    def __init__(
        self,
        name: str,
        maxsize: int,
        timer: Callable[[], float] = time.monotonic,
        counter: cache_metrics.CacheCounter | None = None,
    ) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self.stats = CacheStats(name, maxsize)
        self._counter = counter or cache_metrics.cache_counter(name)
        self._entries: _Entries[K, V] = _Entries(maxsize, timer, self.stats, self._counter)

    def get(self, key: K) -> V | None:
        """The live value for ``key`` (marking it recently used), or None."""
        entry = self._entries.get(key)
        if entry is None:
            self.stats.misses += 1
            self._counter.miss()
            return None
        self.stats.hits += 1
        self._counter.hit()
        return entry[1]

    def put(self, key: K, value: V, until: float) -> None:
        """Stores ``value`` until ``until`` (on the cache's timer); evicts the least recently used when full."""
        self._entries[key] = (until, value)
        self.stats.size = len(self._entries)

    def pop(self, key: K) -> None:
        self._entries.pop(key, None)
        self.stats.size = len(self._entries)

    def discard_if(self, predicate: Callable[[K], bool]) -> None:
        """Drops every entry whose key matches (a revoked key's entries)."""
        for key in [k for k in self._entries if predicate(k)]:
            self._entries.pop(key, None)
        self.stats.size = len(self._entries)

    def clear(self) -> None:
        """Drops everything: for invalidation (a role changed), never for room."""
        self._entries.clear()
        self.stats.size = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: K) -> bool:
        return key in self._entries
