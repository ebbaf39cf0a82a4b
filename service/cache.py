"""Small thread-safe LRU caches: computed rollouts in memory, rendered responses per request.

A cache is bounded in entries and, when given `max_bytes` and `size_of`, in bytes too: the response cache
holds whole bodies (a 1,000-location answer is megabytes), so an entry count alone does not bound memory.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LRUCache(Generic[K, V]):
    """At most `capacity` entries (and `max_bytes` by `size_of`); `get` refreshes; hits and misses counted."""

    def __init__(
        self, capacity: int, *, max_bytes: int | None = None, size_of: Callable[[V], int] | None = None
    ) -> None:
        if capacity < 0:
            raise ValueError(f"LRUCache: capacity must be >= 0, got {capacity}")
        if (max_bytes is None) != (size_of is None):
            raise ValueError("LRUCache: max_bytes and size_of go together")
        self.capacity = capacity
        self.max_bytes = max_bytes
        self._size_of = size_of
        self._data: OrderedDict[K, V] = OrderedDict()
        self._sizes: dict[K, int] = {}
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.bytes = 0

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
        size = self._size_of(value) if self._size_of is not None else 0
        if self.capacity == 0 or (self.max_bytes is not None and size > self.max_bytes):
            return
        with self._lock:
            self._remove(key)
            self._data[key] = value
            self._sizes[key] = size
            self.bytes += size
            while len(self._data) > self.capacity or (
                self.max_bytes is not None and self.bytes > self.max_bytes
            ):
                self._remove(next(iter(self._data)))

    def _remove(self, key: K) -> None:
        if key in self._data:
            del self._data[key]
            self.bytes -= self._sizes.pop(key)

    def items(self) -> list[tuple[K, V]]:
        """A snapshot of the entries, oldest first (without counting or refreshing)."""
        with self._lock:
            return list(self._data.items())

    def discard_where(self, predicate: Callable[[K, V], bool]) -> int:
        with self._lock:
            doomed = [k for k, v in self._data.items() if predicate(k, v)]
            for k in doomed:
                self._remove(k)
            return len(doomed)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._sizes.clear()
            self.bytes = 0


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

    def nbytes(self) -> int:
        """What keeping it costs, about: the body plus the strings and a fixed overhead."""
        strings = (self.media_type, self.etag, self.last_modified, self.run, self.model_sha256)
        return len(self.body) + sum(map(len, strings)) + 512


def response_cache(*, entries: int, max_bytes: int) -> LRUCache[Hashable, RenderedResponse]:
    """The rendered-response cache: bounded in entries and in bytes of bodies."""
    return LRUCache(entries, max_bytes=max_bytes, size_of=RenderedResponse.nbytes)
