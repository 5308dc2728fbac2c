"""A thread-safe LRU cache with hit, miss and eviction counters, as the demo app's caches use."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any, Generic, TypeVar

from workbench.errors import ConfigError

__all__ = ["LRUCache"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LRUCache(Generic[K, V]):
    """A thread-safe least-recently-used cache with counters; ``maxsize`` 0 switches it off."""

    def __init__(self, maxsize: int) -> None:
        if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 0:
            raise ConfigError(f"cache maxsize must be an integer >= 0 (0 = off), got {maxsize!r}")
        self.maxsize = maxsize
        self.hits = 0
        self.misses = 0
        self.evictions = 0
        self._data: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        """False when maxsize is 0: get() always misses and nothing is counted or stored."""
        return self.maxsize > 0

    def get(self, key: K) -> V | None:
        """The cached value, now the most recently used, or None on a miss."""
        if not self.maxsize:
            return None
        with self._lock:
            try:
                value = self._data[key]
            except KeyError:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key: K, value: V) -> None:
        """Store a value, evicting the least recently used entries beyond maxsize."""
        if not self.maxsize:
            return
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)
                self.evictions += 1

    def keys(self) -> list[K]:
        """The cached keys, least recently used first."""
        with self._lock:
            return list(self._data)

    def stats(self) -> dict[str, Any]:
        """maxsize, size, hits, misses, evictions and hit_rate (hits over lookups)."""
        with self._lock:
            lookups = self.hits + self.misses
            return {
                "maxsize": self.maxsize,
                "size": len(self._data),
                "hits": self.hits,
                "misses": self.misses,
                "evictions": self.evictions,
                "hit_rate": round(self.hits / lookups, 4) if lookups else 0.0,
            }

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"LRUCache(maxsize={self.maxsize}, size={len(self)})"
