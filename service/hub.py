"""Compute once, serve many: the memory LRU, the on-disk store and the worker pool behind every forecast.

`ForecastHub.obtain` answers a `RunKey` with the rollout in memory, or the job that is loading it from the
store or computing it. Loading and computing both run on the worker pool, so the event loop only awaits.

Several replicas may share one store: before computing, a job takes the rollout's lease in the store
(`service.lease`). While another replica holds it the job waits, looking in the store every `poll_s`, and
serves what that replica stores; when the lease expires (its holder died) the job takes it over and
computes. A lease is renewed as the rollout's steps are produced and released once the rollout is stored.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import xarray as xr

from fno_forecast.recent_anomaly import longest_window_steps
from service.cache import LRUCache
from service.catalog import ModelEntry
from service.engine import ForecastFunction, RolloutData, compute_rollout, read_rollout, rollout_data
from service.jobs import Job, JobManager
from service.lease import Lease, LeaseBook
from service.runs import run_time
from service.store import NETCDF_LOCK, ForecastStore, RunKey, StoreWriteError

log = logging.getLogger(__name__)


def run_key(entry: ModelEntry, run: str, hours: int) -> RunKey:
    return RunKey(model_id=entry.id, model_sha256=entry.sha256, run=run, hours=hours)


def initial_window(entry: ModelEntry, run: str) -> xr.Dataset:
    """The initial states a rollout from `run` needs (it and the steps before it), read into memory.

    The steps before it cover the model's history and the longest window of its recent-anomaly
    correction, so the service forecasts exactly what `fno_forecast.forecast` does from the same file.
    Reading under `NETCDF_LOCK` here keeps the rollout itself, on a worker thread, off the NetCDF library
    (initial states open lazily from the user's file). Falls back to the whole dataset when its time axis
    cannot be sliced (the library then reports what is wrong with it).
    """
    states = entry.initial_states
    steps_back = max(3, longest_window_steps(entry.bundle.recent_anomaly, entry.step_hours))
    try:
        end = run_time(run).astype("datetime64[ns]")
        start = end - np.timedelta64(int(round(steps_back * entry.step_hours * 3600)), "s")
        window = states.sel(time=slice(start, end))
    except (KeyError, TypeError, ValueError):
        window = states
    with NETCDF_LOCK:
        return window.load()


class ForecastHub:
    def __init__(
        self,
        *,
        store: ForecastStore,
        jobs: JobManager,
        memory: LRUCache[RunKey, RolloutData],
        leases: LeaseBook,
        poll_s: float = 1.0,
    ) -> None:
        self.store = store
        self.jobs = jobs
        self.memory = memory
        self.leases = leases
        self.poll_s = poll_s
        self.sleep: Callable[[float], None] = time.sleep  # between looks while another replica computes
        self.store_loads = 0
        self.rollouts_computed = 0

    def obtain(
        self, entry: ModelEntry, key: RunKey, *, forecast_fn: ForecastFunction, exact: bool = False
    ) -> Job[RolloutData] | RolloutData:
        """The rollout if it is in memory, else the (single-flight) job loading or computing it.

        Unless `exact`, the leading part of a longer rollout of the same run (in memory or stored) answers
        too, so that a run computed once for its full horizon serves every shorter request; `exact` is for
        downloads, which send the stored file of exactly `key`. Raises `QueueFull` when the queue is full.
        """
        steps = max(1, int(-(-key.hours // entry.step_hours)))
        return self.jobs.single_flight(
            key,
            total_steps=steps,
            cached=lambda: self.memory.get(key) or (None if exact else self._longer_in_memory(key)),
            compute=lambda job: self._materialise(entry, key, job, forecast_fn, exact=exact),
        )

    def _longer_in_memory(self, key: RunKey) -> RolloutData | None:
        for held, data in self.memory.items():
            if held.model_sha256 == key.model_sha256 and held.run == key.run and held.hours >= key.hours:
                return data.leading(key)
        return None

    async def get(
        self, entry: ModelEntry, key: RunKey, *, forecast_fn: ForecastFunction, exact: bool = False
    ) -> RolloutData:
        found = self.obtain(entry, key, forecast_fn=forecast_fn, exact=exact)
        if isinstance(found, RolloutData):
            return found
        return await asyncio.wrap_future(found.future)

    def _materialise(
        self,
        entry: ModelEntry,
        key: RunKey,
        job: Job[RolloutData],
        forecast_fn: ForecastFunction,
        *,
        exact: bool,
    ) -> RolloutData:
        """The stored rollout, else computed under its lease (waiting while another replica holds it)."""
        lease: Lease | None = None
        while True:
            data = self._load(entry, key, job, exact=exact)
            if data is not None or lease is not None:
                break  # found, or ours to compute (looked again after taking the lease: no race)
            lease = self.leases.acquire(key.digest)
            if lease is None:
                self.sleep(self.poll_s)
        if data is None:
            try:
                data = self._compute(entry, key, job, forecast_fn, lease)
            finally:
                self.leases.release(key.digest)
        elif lease is not None:
            self.leases.release(key.digest)
        self.memory.put(key, data)
        return data

    def _load(
        self, entry: ModelEntry, key: RunKey, job: Job[RolloutData], *, exact: bool
    ) -> RolloutData | None:
        """The rollout read back from the store (the leading part of a longer one unless `exact`), or None."""
        record = self.store.rollout(key) or (None if exact else self.store.covering(key))
        if record is None:
            return None
        try:
            path: Path = self.store.local_file(record)
        except FileNotFoundError:
            log.warning(
                "rollout %s %s +%dh: indexed but its file is gone; computing it",
                key.model_id,
                key.run,
                key.hours,
            )
            return None
        with NETCDF_LOCK, xr.open_dataset(path) as stored:
            data = read_rollout(
                stored.load(),
                key=record.key,
                schema=entry.schema,
                computed_at=record.computed_at,
                seconds=record.seconds,
                path=path,
            )
        job.steps_done = job.total_steps
        self.store_loads += 1
        if record.key != key:  # kept whole, found again by `_longer_in_memory`
            self.memory.put(record.key, data)
            return data.leading(key)
        return data

    def _compute(
        self,
        entry: ModelEntry,
        key: RunKey,
        job: Job[RolloutData],
        forecast_fn: ForecastFunction,
        lease: Lease,
    ) -> RolloutData:
        from fno_forecast.output import write_forecast

        def on_lead(lead_hours: float, fields: np.ndarray) -> None:
            nonlocal lease
            job.report(lead_hours, fields)
            if self.leases.due(lease):
                lease = self.leases.renew(lease) or lease  # lost: another replica computes it too

        computed = compute_rollout(
            forecast_fn,
            bundle=entry.bundle,
            initial_state=initial_window(entry, key.run),
            run=key.run,
            hours=key.hours,
            on_lead=on_lead,
        )
        seconds = computed.seconds
        write: Callable = lambda temp: write_forecast(computed.dataset, temp)  # noqa: E731
        self.rollouts_computed += 1
        log.info("rollout %s %s +%dh in %.2fs", key.model_id, key.run, key.hours, seconds)
        try:
            record = self.store.put_rollout(key, write, seconds=seconds)
        except StoreWriteError as error:
            # Answer from memory: a full or read-only disk costs persistence, not the forecast.
            log.warning(
                "rollout %s %s +%dh served from memory, not stored: %s",
                key.model_id,
                key.run,
                key.hours,
                error,
            )
            computed_at, path = time.time(), None
        else:
            computed_at, path = record.computed_at, record.path
        return rollout_data(
            computed.dataset,
            key=key,
            schema=entry.schema,
            lead_hours=computed.lead_hours,
            values=computed.values,
            computed_at=computed_at,
            seconds=seconds,
            path=path,
        )
