"""Rollouts on a worker thread pool, computed once: single flight and admission control.

Identical requests for a rollout that is queued or running share one `Job` (single flight). At most
`max_queue` jobs are queued or running; one more is refused with `QueueFull`, which the routes answer with
429 and a Retry-After estimated from recent rollout times. Jobs run on threads, never on the event loop;
async routes await `asyncio.wrap_future(job.future)`.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np
from cachetools import FIFOCache

from service.store import RunKey

T = TypeVar("T")

FAILURES_KEPT = 256  # the last errors of failed keys, for status answers; older ones are forgotten
RECENT_ROLLOUTS = 20  # rollout times the Retry-After estimate averages


class QueueFull(Exception):
    """The rollout queue is full; `retry_after` is a whole number of seconds to wait."""

    def __init__(self, retry_after: int, depth: int) -> None:
        super().__init__(f"{depth} rollouts are queued or running; retry in {retry_after} s")
        self.retry_after = retry_after
        self.depth = depth


@dataclass
class Job(Generic[T]):
    """One rollout in flight. `produced` collects `(lead_hours, fields (channel, lat, lon))` as steps finish."""

    key: RunKey
    total_steps: int
    future: Future[T] = field(default_factory=Future)
    steps_done: int = 0
    produced: list[tuple[float, np.ndarray]] = field(default_factory=list)
    submitted_at: float = field(default_factory=time.time)
    started_at: float | None = None

    @property
    def status(self) -> str:
        if self.future.done():
            return "failed" if self.future.exception() is not None else "completed"
        return "running" if self.started_at is not None else "queued"

    def report(self, lead_hours: float, fields: np.ndarray) -> None:
        """Called from the worker thread after each step."""
        self.produced.append((float(lead_hours), fields))
        self.steps_done += 1


class JobManager:
    """A thread pool plus the table of jobs in flight, keyed by `RunKey`."""

    def __init__(
        self,
        *,
        workers: int,
        max_queue: int,
        on_finished: Callable[[float, bool], None] | None = None,
    ) -> None:
        self.workers = workers
        self.max_queue = max_queue
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rollout")
        self._jobs: dict[RunKey, Job[Any]] = {}
        self._lock = threading.Lock()
        self._recent_seconds: deque[float] = deque(maxlen=RECENT_ROLLOUTS)
        self._on_finished = on_finished
        self.submitted = 0
        # The last error of keys whose job failed, until resubmitted; the oldest go first when full.
        self.failures: FIFOCache[RunKey, str] = FIFOCache(maxsize=FAILURES_KEPT)

    @property
    def depth(self) -> int:
        """Jobs queued or running."""
        with self._lock:
            return len(self._jobs)

    def get(self, key: RunKey) -> Job[Any] | None:
        with self._lock:
            return self._jobs.get(key)

    def retry_after(self) -> int:
        mean = float(np.mean(self._recent_seconds)) if self._recent_seconds else 5.0
        return max(1, math.ceil(mean * max(1, len(self._jobs)) / self.workers))

    def single_flight(
        self,
        key: RunKey,
        *,
        total_steps: int,
        cached: Callable[[], T | None],
        compute: Callable[[Job[T]], T],
    ) -> Job[T] | T:
        """The job in flight for `key`, else the cached value, else a newly submitted job.

        `cached` must be cheap (a memory lookup): it runs under the manager's lock so that a job finishing
        between the two checks cannot be missed. `compute` must put its result where `cached` finds it
        before returning.
        """
        with self._lock:
            job = self._jobs.get(key)
            if job is not None:
                return job
            value = cached()
            if value is not None:
                return value
            if len(self._jobs) >= self.max_queue:
                raise QueueFull(self.retry_after(), len(self._jobs))
            job = Job(key=key, total_steps=total_steps)
            self._jobs[key] = job
            self.failures.pop(key, None)
            self.submitted += 1
        self._pool.submit(self._work, job, compute)
        return job

    def _work(self, job: Job[T], compute: Callable[[Job[T]], T]) -> None:
        job.started_at = time.time()
        ok = True
        try:
            value = compute(job)
        except BaseException as error:  # handed to the waiters through the future
            ok = False
            with self._lock:
                self._jobs.pop(job.key, None)
                self.failures[job.key] = str(error)
            job.future.set_exception(error)
        else:
            with self._lock:
                self._jobs.pop(job.key, None)
            job.future.set_result(value)
        seconds = time.time() - job.started_at
        if ok:
            self._recent_seconds.append(seconds)
        if self._on_finished is not None:
            self._on_finished(seconds, ok)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
