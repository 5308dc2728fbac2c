"""The demo app's LRU cache: eviction order, counters, the off switch, thread safety."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workbench.demo.lru import LRUCache
from workbench.errors import ConfigError


def test_lru_cache_evicts_the_least_recently_used() -> None:
    cache: LRUCache[str, int] = LRUCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "a" is now the most recent
    cache.put("c", 3)
    assert cache.keys() == ["a", "c"]
    assert cache.get("b") is None
    cache.put("a", 10)  # overwriting refreshes, it does not evict
    cache.put("d", 4)
    assert cache.keys() == ["a", "d"]
    assert cache.get("a") == 10
    assert cache.stats() == {
        "maxsize": 2,
        "size": 2,
        "hits": 2,
        "misses": 1,
        "evictions": 2,
        "hit_rate": 0.6667,
    }


def test_lru_cache_of_size_zero_is_off() -> None:
    cache: LRUCache[str, int] = LRUCache(0)
    cache.put("a", 1)
    assert cache.get("a") is None
    assert not cache.enabled
    assert (len(cache), cache.hits, cache.misses, cache.evictions) == (0, 0, 0, 0)


@pytest.mark.parametrize("maxsize", [-1, 1.5, True])
def test_lru_cache_rejects_bad_sizes(maxsize: Any) -> None:
    with pytest.raises(ConfigError, match="maxsize"):
        LRUCache(maxsize)


@given(
    maxsize=st.integers(min_value=1, max_value=4),
    ops=st.lists(st.tuples(st.booleans(), st.integers(min_value=0, max_value=6)), max_size=40),
)
def test_lru_cache_matches_a_reference_model(maxsize: int, ops: list[tuple[bool, int]]) -> None:
    cache: LRUCache[int, int] = LRUCache(maxsize)
    order: list[int] = []  # least recently used first
    hits = misses = evictions = 0
    for is_put, key in ops:
        if is_put:
            cache.put(key, key * 10)
            if key in order:
                order.remove(key)
            order.append(key)
            if len(order) > maxsize:
                order.pop(0)
                evictions += 1
        else:
            got = cache.get(key)
            if key in order:
                assert got == key * 10
                order.remove(key)
                order.append(key)
                hits += 1
            else:
                assert got is None
                misses += 1
    assert cache.keys() == order
    assert (cache.hits, cache.misses, cache.evictions) == (hits, misses, evictions)


def test_lru_cache_is_thread_safe() -> None:
    cache: LRUCache[int, int] = LRUCache(8)

    def hammer(offset: int) -> None:
        for i in range(2000):
            cache.put((i + offset) % 16, i)
            cache.get(i % 16)

    threads = [threading.Thread(target=hammer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(cache) == 8
    assert cache.hits + cache.misses == 4 * 2000
    assert 0 < cache.evictions <= 4 * 2000 - 8
