"""Small thread-safe LRU caches: computed rollouts in memory, rendered responses per ETag."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LRUCache(Generic[K, V]):
    """At most `capacity` entries; `get` refreshes an entry; hits and misses are counted."""

    def __init__(self, capacity: int) -> None:
        if capacity < 0:
            raise ValueError(f"LRUCache: capacity must be >= 0, got {capacity}")
        self.capacity = capacity
        self._data: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: K) -> V | None:
        with self._lock:
            value = self._data.get(key)
            if value is None:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return value

    def peek(self, key: K) -> V | None:
        """Like `get` without counting or refreshing."""
        return self._data.get(key)

    def put(self, key: K, value: V) -> None:
        if self.capacity == 0:
            return
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.capacity:
                self._data.popitem(last=False)

    def discard_where(self, predicate: Callable[[K, V], bool]) -> int:
        with self._lock:
            doomed = [k for k, v in self._data.items() if predicate(k, v)]
            for k in doomed:
                del self._data[k]
            return len(doomed)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


@dataclass(frozen=True)
class RenderedResponse:
    """A response body ready to send again: what the cached point path returns without recomputing."""

    body: bytes
    media_type: str
    etag: str
    last_modified: str
    run: str
    model_sha256: str
    extra_headers: tuple[tuple[str, str], ...] = ()
