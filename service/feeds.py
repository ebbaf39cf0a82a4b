"""What feeds analyses into the cycle: the startup sources, a watched folder, an upload, and a replay.

Each feed has a `tick()` that does one round of work on the calling thread (tests call it directly);
`run_every(interval, tick)` repeats it in the lifespan, off the event loop. A replay feeds a file's
analyses (or the bundled NCEP states) one time step per tick, as if each were arriving now; the service
then says `replay` in `/ready` and in every answer's `X-Provenance` header, and its runs, events and
scores carry `"provenance": "replay"`, so a replayed run is never taken for a live one.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import xarray as xr
from fastapi.concurrency import run_in_threadpool

from fno_forecast.data.channels import Channels
from fno_forecast.data.timeaxis import format_time, time_info
from service.analyses import AnalysisRejected, open_analysis
from service.ingest import FolderPoller, is_watched, list_sources
from service.live import LiveRuns

log = logging.getLogger(__name__)

BUNDLED = "bundled"  # `--replay bundled`: the NCEP sample shipped with the library
REPLAY_WARMUP_STEPS = 2  # fed at start, so the first run has its previous step


def startup_sources(data: Path | None) -> tuple[list[tuple[Path | xr.Dataset, str]], str]:
    """The sources read at start (each with the name clients see) and the label for all of them."""
    if data is None:
        from fno_forecast.initial_states import DEFAULT_SOURCE, default_initial_states

        return [(default_initial_states(), DEFAULT_SOURCE)], DEFAULT_SOURCE
    files = list_sources(data)
    label = f"{data.name} ({len(files)} files at start)" if is_watched(data) else data.name
    return [(path, path.name) for path in files], label


class FolderFeed:
    """The watched `--data` folder or glob: each poll ingests the files that appeared since the last."""

    def __init__(self, data: Path, live: LiveRuns) -> None:
        self.poller = FolderPoller(data)
        self.live = live
        self.refused: dict[str, str] = {}  # file name -> why, for /ready

    def tick(self) -> list[str]:
        """One poll; returns the names of the files ingested (accepted or refused)."""
        with self.live.ingest_lock:
            fresh = self.poller.poll()
            for path in fresh:
                problem = self.live.ingest_logged(path, name=path.name)
                if problem is None:
                    self.refused.pop(path.name, None)
                else:
                    self.refused[path.name] = problem
        self.live.retry_pending()
        return [path.name for path in fresh]

    def ingest_upload(self, temp: Path, *, final: Path) -> list[str]:
        """An uploaded file (fsynced under a temporary name): checked, then renamed into place and kept;
        refused, removed. Raises `AnalysisRejected`."""
        with self.live.ingest_lock:
            try:
                os.replace(temp, final)
                self.poller.mark_seen([final])
                return self.live.ingest(final, name=final.name)
            except AnalysisRejected:
                final.unlink(missing_ok=True)
                raise


class ReplayFeed:
    """A file's analyses (or the bundled states) fed one time step per tick, after a warm-up."""

    def __init__(self, source: str, live: LiveRuns) -> None:
        if source == BUNDLED:
            from fno_forecast.initial_states import DEFAULT_SOURCE, default_initial_states

            self.name = DEFAULT_SOURCE
            self.channels: Channels = open_analysis(default_initial_states(), name=self.name)
        else:
            self.name = Path(source).name
            self.channels = open_analysis(Path(source), name=self.name)
        self.live = live
        self.total = self.channels.array.sizes["time"]
        self.fed = 0

    def _step(self, start: int, stop: int) -> Channels:
        array = self.channels.array.isel(time=slice(start, stop))
        return replace(self.channels, array=array, time=time_info(array["time"].values))

    def warm_up(self) -> str | None:
        """Feed the first steps as the startup analyses (every time held then is a run)."""
        self.fed = min(REPLAY_WARMUP_STEPS, self.total)
        return self.live.ingest_logged(self._step(0, self.fed), name=self.label(0, self.fed), startup=True)

    def label(self, start: int, stop: int) -> str:
        times = self.channels.array["time"].values
        return f"{self.name} [{format_time(times[start])}]" + (
            "" if stop - start == 1 else f" +{stop - start - 1}"
        )

    def tick(self) -> bool:
        """Feed the next step; False once the file is used up."""
        if self.fed >= self.total:
            return False
        with self.live.ingest_lock:
            self.live.ingest_logged(
                self._step(self.fed, self.fed + 1), name=self.label(self.fed, self.fed + 1)
            )
            self.fed += 1
        self.live.retry_pending()
        return True

    def describe(self) -> dict[str, Any]:
        return {"source": self.name, "steps_fed": self.fed, "steps_total": self.total}


async def run_every(interval_s: float, tick: Callable[[], Any]) -> None:
    """Call `tick` on a worker thread every `interval_s` until cancelled; a failing tick is logged."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            await run_in_threadpool(tick)
        except Exception:
            log.exception("analysis feed failed; trying again in %g s", interval_s)


class ProvenanceMiddleware:
    """Every answer says where its analyses come from: `X-Provenance: replay` or `live`."""

    def __init__(self, app: Any, *, provenance: str) -> None:
        self.app = app
        self.header = (b"x-provenance", provenance.encode())

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def marked(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), self.header]}
            await send(message)

        await self.app(scope, receive, marked)
