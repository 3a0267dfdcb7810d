"""services/common/caching.py: a full cache evicts its least recently used
entries only, never serves an entry past its deadline, and counts."""

from __future__ import annotations

import pytest

from depot.services.common import telemetry
from depot.services.common.caching import ExpiringCache


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_full_cache_evicts_the_least_recently_used_entry_only() -> None:
    clock = Clock()
    cache: ExpiringCache[str, int] = ExpiringCache("test.lru", 3, timer=clock)
    for i, key in enumerate("abc"):
        cache.put(key, i, until=100)
    assert cache.get("a") == 0  # "a" is now the most recently used; "b" the least
    cache.put("d", 3, until=100)
    assert "b" not in cache
    assert [cache.get(k) for k in "acd"] == [0, 2, 3]
    cache.put("e", 4, until=100)  # "a" was read before "c" and "d": it goes next
    assert "a" not in cache and len(cache) == 3
    assert cache.stats.evictions == 2
    assert (cache.stats.hits, cache.stats.misses) == (4, 0)


def test_expired_entries_make_room_before_live_ones() -> None:
    clock = Clock()
    cache: ExpiringCache[str, int] = ExpiringCache("test.expiry", 3, timer=clock)
    cache.put("short", 0, until=5)
    cache.put("b", 1, until=100)
    cache.put("c", 2, until=100)
    clock.now = 10
    cache.put("d", 3, until=100)
    assert [cache.get(k) for k in "bcd"] == [1, 2, 3]
    assert cache.stats.evictions == 0  # the expired entry went, no live one


def test_an_entry_is_never_served_at_or_past_its_deadline() -> None:
    clock = Clock()
    cache: ExpiringCache[str, str] = ExpiringCache("test.deadline", 10, timer=clock)
    cache.put("k", "v", until=1.0)
    clock.now = 0.999
    assert cache.get("k") == "v"
    clock.now = 1.0
    assert cache.get("k") is None
    assert (cache.stats.hits, cache.stats.misses) == (1, 1)


def test_a_flood_of_distinct_keys_keeps_the_hot_one() -> None:
    # The old caches cleared everything when full: every hot entry went at
    # once. Here the hot key, read between inserts, is never the LRU entry.
    clock = Clock()
    cache: ExpiringCache[int, str] = ExpiringCache("test.flood", 100, timer=clock)
    cache.put(-1, "hot", until=100)
    for i in range(10_000):
        cache.put(i, "cold", until=100)
        assert cache.get(-1) == "hot"
    assert len(cache) == 100
    assert cache.stats.evictions == 10_000 - 99
    assert cache.stats.size == 100


def test_discard_if_and_clear_invalidate() -> None:
    cache: ExpiringCache[str, int] = ExpiringCache("test.invalidate", 10, timer=Clock())
    for key in ("dpt_a_1", "dpt_a_2", "dpt_b_1"):
        cache.put(key, 1, until=100)
    cache.discard_if(lambda k: k.startswith("dpt_a_"))
    assert len(cache) == 1 and "dpt_b_1" in cache
    cache.clear()
    assert len(cache) == 0 and cache.stats.evictions == 0


def test_a_cache_needs_room_for_one_entry() -> None:
    with pytest.raises(ValueError, match="maxsize"):
        ExpiringCache("test.empty", 0)


def test_counters_are_reported_through_the_telemetry_hook() -> None:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    reader = InMemoryMetricReader()
    counter = telemetry.cache_counter("test.metrics", MeterProvider(metric_readers=[reader]))
    cache: ExpiringCache[str, int] = ExpiringCache("test.metrics", 1, timer=Clock(), counter=counter)
    cache.put("a", 1, until=10)
    cache.get("a")
    cache.get("b")
    cache.put("b", 2, until=10)  # evicts "a"
    cache.get("b")
    data = reader.get_metrics_data()
    assert data is not None
    seen = {
        (metric.name, point.attributes.get("depot.cache.result", "")): point.value
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for metric in sm.metrics
        for point in metric.data.data_points  # type: ignore[union-attr]
        if point.attributes is not None and point.attributes.get("depot.cache") == "test.metrics"
    }
    assert seen == {
        ("depot.cache.lookups", "hit"): 2,
        ("depot.cache.lookups", "miss"): 1,
        ("depot.cache.evictions", ""): 1,
    }
