"""Announcements of new runs and verifications: a bounded in-memory log and its Server-Sent Events stream.

Events get increasing ids; the log keeps the last `keep` of them, so a client that reconnects with
`Last-Event-ID` receives what it missed (when still kept) and then follows live. Publishing happens on
worker threads (a rollout finishing), reading on the event loop; one lock guards the log. The stream
itself is written here rather than with sse-starlette: the format is three lines per event, and the
stream must poll the thread-fed log anyway.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

RETRY_MS = 3000  # how long a disconnected EventSource waits before reconnecting


@dataclass(frozen=True)
class Event:
    id: int
    kind: str
    data: dict[str, Any]

    def frame(self) -> bytes:
        return f"id: {self.id}\nevent: {self.kind}\ndata: {json.dumps(self.data)}\n\n".encode()


class EventLog:
    """The last `keep` events, ids from 1 up."""

    def __init__(self, *, keep: int) -> None:
        self._events: deque[Event] = deque(maxlen=keep)
        self._lock = threading.Lock()
        self._next = 1

    def publish(self, kind: str, data: dict[str, Any]) -> Event:
        with self._lock:
            event = Event(self._next, kind, data)
            self._next += 1
            self._events.append(event)
        return event

    @property
    def last_id(self) -> int:
        with self._lock:
            return self._next - 1

    def since(self, last_id: int) -> list[Event]:
        """Kept events with an id above `last_id`, oldest first."""
        with self._lock:
            return [event for event in self._events if event.id > last_id]


def resume_id(header: str | None, log: EventLog) -> int:
    """Where a stream starts: after the `Last-Event-ID` a client sent, else after the latest event."""
    if header is not None and header.strip().isdigit():
        return int(header.strip())
    return log.last_id


async def event_stream(
    log: EventLog,
    *,
    after: int,
    keepalive_s: float,
    disconnected: Callable[[], Awaitable[bool]],
    poll_s: float = 0.1,
    clock: Callable[[], float] = time.monotonic,
) -> AsyncIterator[bytes]:
    """SSE frames of the events after `after`, then of each new one, with a comment line every
    `keepalive_s` of silence (so proxies keep the connection); ends when the client goes."""
    yield f"retry: {RETRY_MS}\n\n".encode()
    last_sent = clock()
    while not await disconnected():
        events = log.since(after)
        for event in events:
            yield event.frame()
            after = event.id
        if events:
            last_sent = clock()
        elif clock() - last_sent >= keepalive_s:
            yield b": keep-alive\n\n"
            last_sent = clock()
        await asyncio.sleep(poll_s)
