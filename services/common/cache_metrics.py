"""The in-process caches' metrics hook: ``cache_counter(name)``.

Apart from telemetry.py, which wires gRPC interceptors, so that domain
modules (which must not import grpc) can report their caches; telemetry.py
re-exports both names.
"""

from __future__ import annotations

from opentelemetry import metrics


class CacheCounter:
    """Hits, misses and evictions of one named cache (``cache_counter``).

    The hit ratio is ``depot.cache.lookups{depot.cache.result="hit"}`` over all
    lookups of the same ``depot.cache``. Without a meter provider each call is
    a no-op counter's ``add``.
    """

    def __init__(self, name: str, meter: metrics.Meter):
        self.name = name
        self._lookups = meter.create_counter(
            "depot.cache.lookups", unit="{lookup}", description="In-process cache lookups, by cache and result"
        )
        self._evictions = meter.create_counter(
            "depot.cache.evictions", unit="{entry}", description="Entries a full cache evicted, by cache"
        )
        self._hit = {"depot.cache": name, "depot.cache.result": "hit"}
        self._miss = {"depot.cache": name, "depot.cache.result": "miss"}
        self._cache = {"depot.cache": name}

    def hit(self, n: int = 1) -> None:
        self._lookups.add(n, self._hit)

    def miss(self, n: int = 1) -> None:
        self._lookups.add(n, self._miss)

    def evicted(self, n: int = 1) -> None:
        self._evictions.add(n, self._cache)


def cache_counter(name: str, meter_provider: metrics.MeterProvider | None = None) -> CacheCounter:
    """The counters of the cache ``name`` (e.g. ``"metadata.auth"``): create one per cache, at its
    construction, and call ``hit()`` / ``miss()`` on each lookup and ``evicted()`` when it drops an
    entry to make room. On the global meter provider (``setup()``) unless given one (tests).
    """
    return CacheCounter(name, metrics.get_meter("depot.cache", meter_provider=meter_provider))
