"""The forecast cycle: an analysis arrives, each model's new run is computed once, made the latest and
announced, and earlier runs are scored as the analyses of their valid times arrive.

`LiveRuns.ingest` checks a source (`service.analyses`), adds its new times to every model's initial
states, and submits the default-horizon rollout of each new time a model can start from (its history
held) through the hub (single flight, stored). When a rollout finishes, its run joins the model's runs
(so requests without `run` get it, with a new ETag), the rendered-response cache is cleared, `event: run`
is published, and the run is scored. Runs beyond the retention limit leave memory, store and index.
A rollout refused by a full queue waits for the next `retry_pending()`: each poll, and each rollout that
finishes, calls it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from fno_forecast.data.channels import Channels
from fno_forecast.data.timeaxis import format_time
from service.analyses import AnalysisRejected, AnalysisSet, check_analysis, open_analysis
from service.cache import LRUCache
from service.catalog import Catalog, ModelEntry, answerable_runs
from service.engine import ForecastFunction, RolloutData
from service.events import EventLog
from service.hub import ForecastHub, run_key
from service.jobs import QueueFull
from service.query import resolve_hours
from service.runs import run_time
from service.verification import Verifier

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunState:
    status: str  # computing, completed, failed
    computed_at: float | None = None
    error: str | None = None


class LiveRuns:
    def __init__(
        self,
        *,
        catalog: Catalog,
        analyses: AnalysisSet,
        hub: ForecastHub,
        events: EventLog,
        verifier: Verifier,
        responses: LRUCache,
        retain_runs: int,
        run_hours: int,
        provenance: str,
    ) -> None:
        self.catalog = catalog
        self.analyses = analyses
        self.hub = hub
        self.events = events
        self.verifier = verifier
        self.responses = responses
        self.retain_runs = retain_runs
        self.run_hours = run_hours
        self.provenance = provenance
        self.forecast_fn: ForecastFunction | None = None  # set by the lifespan (tests override it)
        self.states: dict[tuple[str, str], RunState] = {}
        self.ingest_lock = threading.Lock()  # one source at a time, polls and uploads alike
        self._lock = threading.RLock()
        self._pending: list[tuple[str, np.datetime64]] = []

    # -- analyses in ------------------------------------------------------------------------------------
    def ingest(self, source: Path | xr.Dataset | Channels, *, name: str, startup: bool = False) -> list[str]:
        """Check `source` and add its new times; returns them (ISO). Raises `AnalysisRejected`, changing
        nothing, when the source does not fit every model. At `startup` each time held that a run can start
        from is one, computed when first asked for; later each new one is computed now and announced."""
        channels = source if isinstance(source, Channels) else open_analysis(source, name=name)
        bundles = [entry.bundle for entry in self.catalog.entries.values()]
        array, infos = check_analysis(channels, name=name, bundles=bundles, reference=self.analyses.reference)
        new = self.analyses.add(array, infos, name=name)
        if len(new) == 0:
            log.info("analysis %s: no new times (all %d are held already)", name, array.sizes["time"])
            return []
        dataset = self.analyses.dataset()
        with self._lock:
            for model_id, entry in list(self.catalog.entries.items()):
                runs = self._answerable(entry) if startup else entry.runs
                self.catalog.entries[model_id] = replace(entry, initial_states=dataset, runs=runs)
                if startup:
                    continue
                waiting = [(model_id, t) for t in self._startable(entry, new)]
                self._pending.extend(item for item in waiting if item not in self._pending)
        if startup:
            return [format_time(t) for t in new]
        log.info(
            "analysis %s: %d new time(s) %s .. %s", name, len(new), format_time(new[0]), format_time(new[-1])
        )
        self._verify_earlier(new)
        self.retry_pending()
        return [format_time(t) for t in new]

    def ingest_logged(
        self, source: Path | xr.Dataset | Channels, *, name: str, startup: bool = False
    ) -> str | None:
        """`ingest`, a refusal logged in one line (and returned) instead of raised."""
        try:
            self.ingest(source, name=name, startup=startup)
        except AnalysisRejected as error:
            log.error("%s; refused, nothing changed", error)
            return str(error)
        return None

    def _answerable(self, entry: ModelEntry) -> tuple[np.datetime64, ...]:
        return answerable_runs(
            self.analyses.times.astype("datetime64[m]"),
            step_hours=entry.step_hours,
            use_history=bool(entry.bundle.stepper.use_history),
        )

    def _startable(self, entry: ModelEntry, new: np.ndarray) -> list[np.datetime64]:
        """New times (and the times just after them, now that their history arrived) a run can start from."""
        step = np.timedelta64(int(round(entry.step_hours * 60)), "m")
        arrived = set(new.astype("datetime64[m]")) | set(new.astype("datetime64[m]") + step)
        return [t for t in self._answerable(entry) if t in arrived and t not in entry.runs]

    # -- runs ---------------------------------------------------------------------------------------------
    def default_hours(self, entry: ModelEntry) -> int:
        """The horizon each new run is computed for (whole steps, at most the model's maximum)."""
        return resolve_hours(entry, min(self.run_hours, entry.max_hours), None)

    def retry_pending(self) -> None:
        """Submit the waiting runs until the queue is full (the rest wait for the next call)."""
        with self._lock:
            pending = list(self._pending)
        for model_id, when in pending:
            entry = self.catalog.entries.get(model_id)
            run = format_time(when)
            if entry is None or self.forecast_fn is None:
                continue
            key = run_key(entry, run, self.default_hours(entry))
            try:
                found = self.hub.obtain(entry, key, forecast_fn=self.forecast_fn)
            except QueueFull:
                log.info("run %s %s waits: the rollout queue is full", model_id, run)
                return
            with self._lock:
                self._pending.remove((model_id, when))
                self.states[(model_id, run)] = RunState("computing")
            if isinstance(found, RolloutData):
                self._completed(model_id, found)
            else:
                found.future.add_done_callback(self._finisher(model_id, run))

    def _finisher(self, model_id: str, run: str) -> Callable[[Future], None]:
        def finished(future: Future) -> None:
            error = future.exception()
            if error is None:
                self._completed(model_id, future.result())
            else:
                log.error("run %s %s failed: %s", model_id, run, error)
                with self._lock:
                    self.states[(model_id, run)] = RunState("failed", error=str(error))
                event = {"model": model_id, "run": run, "status": "failed", "provenance": self.provenance}
                self.events.publish("run", event)  # the reason is on GET /v1/runs, paths redacted
            self.retry_pending()  # a place in the queue is free

        return finished

    def _completed(self, model_id: str, data: RolloutData) -> None:
        run = data.key.run
        with self._lock:
            entry = self.catalog.entries.get(model_id)
            if entry is None or entry.sha256 != data.key.model_sha256:
                return
            runs = tuple(sorted(set(entry.runs) | {run_time(run)}))
            entry = replace(entry, runs=runs)
            self.catalog.entries[model_id] = entry
            self.states[(model_id, run)] = RunState("completed", computed_at=data.computed_at)
            dropped = self._retire(entry)
        self.responses.clear()
        log.info("run %s %s computed; latest %s", model_id, run, format_time(runs[-1]))
        self.events.publish(
            "run",
            {
                "model": model_id,
                "run": run,
                "status": "completed",
                "latest": format_time(runs[-1]),
                "computed_at": data.computed_at,
                "provenance": self.provenance,
            },
        )
        for old in dropped:
            self.events.publish(
                "run", {"model": model_id, "run": old, "status": "removed", "provenance": self.provenance}
            )
        self._score(entry, data)

    def _retire(self, entry: ModelEntry) -> list[str]:
        """Drop the oldest runs beyond the retention limit from the index, memory and store."""
        if self.retain_runs <= 0 or len(entry.runs) <= self.retain_runs:
            return []
        old = [format_time(t) for t in entry.runs[: len(entry.runs) - self.retain_runs]]
        self.catalog.entries[entry.id] = replace(entry, runs=entry.runs[len(old) :])
        for run in old:
            self.hub.memory.discard_where(
                lambda key, _v, run=run: key.model_id == entry.id and key.run == run
            )
            self.hub.store.delete_run(entry.sha256, run)
            self.verifier.forget(entry.id, run)
            self.states.pop((entry.id, run), None)
        log.info("runs %s of %s removed (retention %d runs)", ", ".join(old), entry.id, self.retain_runs)
        return old

    # -- verification -------------------------------------------------------------------------------------
    def _score(self, entry: ModelEntry, data: RolloutData) -> None:
        leads = self.verifier.score(
            entry.id, data, analyses=self.analyses, climatology=entry.bundle.climatology
        )
        if leads:
            self.events.publish(
                "verification",
                {"model": entry.id, "run": data.key.run, "lead_hours": leads, "provenance": self.provenance},
            )

    def _verify_earlier(self, new: np.ndarray) -> None:
        """Score the computed runs whose valid times the new analyses cover (loading them from the store)."""
        for entry in list(self.catalog.entries.values()):
            for when in entry.runs:
                if not any(when < t.astype("datetime64[m]") for t in new):
                    continue
                data = self._computed(entry, format_time(when))
                if data is not None:
                    self._score(entry, data)

    def _computed(self, entry: ModelEntry, run: str) -> RolloutData | None:
        """The longest rollout of `run` computed so far (in memory, else in the store), None when none is."""
        held = [
            data
            for key, data in self.hub.memory.items()
            if key.run == run and key.model_sha256 == entry.sha256
        ]
        if held:
            return max(held, key=lambda data: data.key.hours)
        record = self.hub.store.covering(run_key(entry, run, 1))
        if record is None or self.forecast_fn is None:
            return None
        try:
            found = self.hub.obtain(entry, record.key, forecast_fn=self.forecast_fn, exact=True)
            return found if isinstance(found, RolloutData) else found.future.result(timeout=600)
        except Exception as error:  # a stored run that cannot be read back is left unscored, and said so
            log.warning("run %s %s not verified: %s", entry.id, run, error)
            return None

    # -- listing ------------------------------------------------------------------------------------------
    def describe(self, entry: ModelEntry) -> dict[str, Any]:
        """The GET /v1/runs body: every run with its state, oldest first, and the latest."""
        from service.conditional import http_date

        hours = self.default_hours(entry)
        rows: list[dict[str, Any]] = []
        with self._lock:
            pending = {format_time(t) for m, t in self._pending if m == entry.id}
            names = sorted(
                {format_time(t) for t in entry.runs} | pending | {r for m, r in self.states if m == entry.id}
            )
            states = dict(self.states)
        for run in names:
            state = states.get((entry.id, run))
            if state is None and run in pending:
                state = RunState("waiting")
            if state is None:  # a run of the initial states: computed when first asked for
                record = self.hub.store.covering(run_key(entry, run, hours))
                memory = self.hub.memory.peek(run_key(entry, run, hours))
                computed = memory.computed_at if memory else (record.computed_at if record else None)
                state = RunState("completed" if computed else "available", computed_at=computed)
            row = {
                "run": run,
                "status": state.status,
                "computed_at": state.computed_at and http_date(state.computed_at),
            }
            if state.error:
                row["error"] = state.error
            rows.append(row)
        latest = format_time(entry.runs[-1]) if entry.runs else None
        return {
            "model": entry.id,
            "runs": rows,
            "latest": latest,
            "forecast_hours": hours,
            "provenance": self.provenance,
        }
