"""Harmonic climatology: the expected state at a time of year and time of day.

The climatology is a least-squares fit, per channel and grid point, of a constant plus `annual`
harmonics of the year and `diurnal` harmonics of the day (the baseline in the shared data notes uses 3
annual and 2 diurnal). It is small (terms x channel x lat x lon), travels inside the model bundle, and
serves three jobs: the climatology baseline, the anomalies for ACC, and an input feature of the model.
The fit streams over time in chunks, accumulating the normal equations, so data larger than memory
works.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import torch
import xarray as xr

from fno_forecast.data.stats import block_steps
from fno_forecast.data.timeaxis import times_to_hours

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)

HOURS_PER_YEAR = 365.2425 * 24.0


def harmonic_design(hours: ArrayT, *, annual: int, diurnal: int) -> ArrayT:
    """Design matrix `(time, 1 + 2*annual + 2*diurnal)` for hours since the epoch (float64).

    One design for numpy arrays (the fit, the baselines) and torch tensors (the stepper, on the device):
    `hours` of either kind gives the same kind back, so the climatology a model relaxes toward is the one
    that was fitted.
    """
    xp: Any = torch if isinstance(hours, torch.Tensor) else np
    hours = hours.to(torch.float64) if xp is torch else np.asarray(hours, dtype=np.float64)
    columns = [xp.ones_like(hours)]
    year_phase = 2.0 * math.pi * hours / HOURS_PER_YEAR
    day_phase = 2.0 * math.pi * hours / 24.0
    for k in range(1, annual + 1):
        columns += [xp.sin(k * year_phase), xp.cos(k * year_phase)]
    for k in range(1, diurnal + 1):
        columns += [xp.sin(k * day_phase), xp.cos(k * day_phase)]
    return xp.stack(columns, -1)


# the fit of an in-period cross-validation may miss this much of the annual cycle: harmonics are periodic,
# so a missing month is interpolated between its neighbours, not extrapolated
CYCLE_SLACK_HOURS = 31 * 24.0


def cross_validation_split(hours: np.ndarray, *, annual: int) -> int:
    """The first held-out step of an in-period cross-validation of something that depends on the
    climatology (the recent-anomaly correction, the prior's check): the first two thirds fit the
    climatology, the rest is held out. With annual harmonics the fit must also cover the annual cycle,
    less `CYCLE_SLACK_HOURS`, and the held-out part starts no earlier: fitted on part of a year, the
    harmonics run free through the months they never saw, and the held-out anomalies are then that
    error, not what a climatology fitted on whole years meets in a later one (one year of NCEP
    temperature, fitted on 2013-01..08: held-out RMSE 9.96 K in 2013-09..12, `fno-forecast info` of
    the winter fold's model of `benchmarks.held_out_folds` at commit 9c9c126, against 4.95 K for the
    whole-year fit in 2014-01..03), so what is fitted on them corrects an error served forecasts do
    not have. Returns `len(hours)` where nothing is left to hold out."""
    n = len(hours)
    split = int(round(n * 2 / 3))
    if annual > 0 and n:
        elapsed = np.asarray(hours, dtype=np.float64) - float(hours[0])
        split = max(split, int(np.searchsorted(elapsed, HOURS_PER_YEAR - CYCLE_SLACK_HOURS)))
    return min(split, n)


@dataclass(frozen=True)
class Climatology:
    """Fitted harmonic coefficients `(terms, channel, lat, lon)` in physical units."""

    coefficients: np.ndarray
    annual: int
    diurnal: int

    def __post_init__(self) -> None:
        expected = 1 + 2 * self.annual + 2 * self.diurnal
        if self.coefficients.ndim != 4 or self.coefficients.shape[0] != expected:
            raise ValueError(
                f"Climatology.coefficients: expected shape ({expected}, channel, lat, lon), "
                f"got {self.coefficients.shape}"
            )

    def at_hours(self, hours: np.ndarray) -> np.ndarray:
        """Climatological states `(time, channel, lat, lon)` float32 at hours since the epoch."""
        design = harmonic_design(hours, annual=self.annual, diurnal=self.diurnal)
        out = np.tensordot(design, self.coefficients.astype(np.float64), axes=(1, 0))
        return out.astype(np.float32)

    def at_times(self, times: np.ndarray) -> np.ndarray:
        """Climatological states `(time, channel, lat, lon)` at datetime64 or cftime times."""
        return self.at_hours(times_to_hours(times))


def fit_climatology(
    state: xr.DataArray, *, annual: int = 3, diurnal: int = 2, chunk_steps: int | None = None
) -> Climatology:
    """Fit a harmonic climatology to a canonical array `(time, channel, lat, lon)`.

    Streams over `chunk_steps` time steps at a time (default: the streaming passes' block,
    `fno_forecast.data.stats.block_steps`); only the normal equations stay in memory.
    """
    if tuple(state.dims) != ("time", "channel", "lat", "lon"):
        raise ValueError(f"fit_climatology: expected dims (time, channel, lat, lon), got {state.dims}")
    n_time = state.sizes["time"]
    n_terms = 1 + 2 * annual + 2 * diurnal
    if n_time < 2 * n_terms:
        raise ValueError(f"fit_climatology: {n_time} time steps are too few for {n_terms} harmonic terms")
    spatial = int(np.prod([state.sizes[d] for d in ("channel", "lat", "lon")]))
    chunk_steps = block_steps(state) if chunk_steps is None else chunk_steps
    gram = np.zeros((n_terms, n_terms))
    moment = np.zeros((n_terms, spatial))
    hours_all = times_to_hours(state["time"].values)
    for start in range(0, n_time, chunk_steps):
        stop = min(start + chunk_steps, n_time)
        design = harmonic_design(hours_all[start:stop], annual=annual, diurnal=diurnal)
        values = np.asarray(state.isel(time=slice(start, stop)).values, dtype=np.float64)
        gram += design.T @ design
        moment += design.T @ values.reshape(stop - start, spatial)
    coefficients = np.linalg.solve(gram + 1e-9 * np.eye(n_terms), moment)
    shape = (n_terms, state.sizes["channel"], state.sizes["lat"], state.sizes["lon"])
    return Climatology(coefficients.reshape(shape).astype(np.float32), annual=annual, diurnal=diurnal)


GAIN_SAMPLE_BYTES = 128 * 2**20
GAIN_SAMPLE_POINTS = 4096
GAIN_SAMPLE_RUN = 8


def gain_sample(state: xr.DataArray, *, budget_bytes: int = GAIN_SAMPLE_BYTES) -> xr.DataArray:
    """What `term_gains` fits: the whole array when it fits `budget_bytes` as float64, else a sample.

    The gains are fractions of a variance summed over points, so a sample estimates them: every k-th
    latitude and longitude (at most GAIN_SAMPLE_POINTS points) and evenly spaced runs of GAIN_SAMPLE_RUN
    consecutive steps (every hour of the day inside a run, the runs spread over the seasons), as many as
    fit the budget. Runs rather than scattered steps, because a chunked store reads whole chunks in time.
    A store larger than memory is then read in part, and never held whole.
    """
    n_time, n_channel = state.sizes["time"], state.sizes["channel"]
    if n_time * n_channel * state.sizes["lat"] * state.sizes["lon"] * 8 <= budget_bytes:
        return state
    k = 1
    while math.ceil(state.sizes["lat"] / k) * math.ceil(state.sizes["lon"] / k) > GAIN_SAMPLE_POINTS:
        k += 1
    state = state.isel(lat=slice(None, None, k), lon=slice(None, None, k))
    frame = n_channel * state.sizes["lat"] * state.sizes["lon"] * 8
    frames = max(2 * GAIN_SAMPLE_RUN, budget_bytes // frame)
    if frames >= n_time:
        return state
    runs = max(1, frames // GAIN_SAMPLE_RUN)
    starts = np.linspace(0, n_time - GAIN_SAMPLE_RUN, runs).round().astype(np.int64)
    steps = np.unique((starts[:, None] + np.arange(GAIN_SAMPLE_RUN)[None, :]).ravel())
    return state.isel(time=steps)


def term_gains(
    state: xr.DataArray, *, annual: int, diurnal: int, sample_bytes: int = GAIN_SAMPLE_BYTES
) -> tuple[float, float]:
    """How much of the residual variance the annual and the diurnal terms each remove, as fractions.

    `(1 - SSE(all terms) / SSE(without annual), 1 - SSE(all terms) / SSE(without diurnal))`, summed over
    channels (each in units of its own variance) and grid points, in sample. A group of terms that removes
    next to nothing is fitting noise: data with no seasonal or daily cycle (a shallow-water run, a model
    spin-up) gets harmonics that only add error outside the fit. 0.0 for a group that is not requested.
    Data over `sample_bytes` as float64 is scored on a sample of it (`gain_sample`), never loaded whole.
    """
    state = gain_sample(state, budget_bytes=sample_bytes)
    values = np.asarray(state.values, dtype=np.float64)
    values = values / values.std(axis=(0, 2, 3), keepdims=True).clip(min=1e-12)
    hours = times_to_hours(state["time"].values)
    scaled = state.copy(data=values.astype(np.float32))

    def sse(a: int, d: int) -> float:
        climatology = fit_climatology(scaled, annual=a, diurnal=d)
        return float(((values - climatology.at_hours(hours)) ** 2).sum())

    full = sse(annual, diurnal)
    gain_annual = 1.0 - full / max(sse(0, diurnal), 1e-12) if annual else 0.0
    gain_diurnal = 1.0 - full / max(sse(annual, 0), 1e-12) if diurnal else 0.0
    return gain_annual, gain_diurnal


def annual_terms_by_year(
    state: xr.DataArray, *, max_annual: int, diurnal: int, sample_bytes: int = GAIN_SAMPLE_BYTES
) -> tuple[int, tuple[float, ...]]:
    """The number of annual harmonics, 1 to `max_annual`, with the lowest leave-one-year-out error.

    Each whole year of the training period is held out in turn (a trailing part-year joins the last
    one), the climatology is fitted on the others and scored on it; the errors, in units of each
    channel's variance and summed over the folds, are returned per count (index 0: one harmonic). The
    count with the lowest wins, the fewer on a tie. In sample every harmonic lowers the error; out of
    sample the second and third fit the years' own slow anomalies where the seasonal cycle has no such
    shape (on `data/make_synthetic.py daily`, a cosine annual cycle, three harmonics fitted on 2015-2017
    score 3.445 K on 2018-07..12 and one 3.295 K: `python -m benchmarks.predictability --annual 1|3`).
    Under two whole years nothing can be held out: `(max_annual, ())`. Normal equations per fold, so
    the cost is one pass over the data per count; data over `sample_bytes` is scored on a sample.
    """
    hours = times_to_hours(state["time"].values)
    years = int(math.floor((hours[-1] - hours[0] + 24.0) / HOURS_PER_YEAR + 1e-6)) if len(hours) else 0
    if max_annual < 2 or years < 2:
        return max_annual, ()
    state = gain_sample(state, budget_bytes=sample_bytes)
    hours = times_to_hours(state["time"].values)
    values = np.asarray(state.values, dtype=np.float64)
    values = (values / values.std(axis=(0, 2, 3), keepdims=True).clip(min=1e-12)).reshape(len(hours), -1)
    fold = np.minimum(((hours - hours[0]) // HOURS_PER_YEAR).astype(np.int64), years - 1)
    errors = []
    for annual in range(1, max_annual + 1):
        design = harmonic_design(hours, annual=annual, diurnal=diurnal)
        grams = np.stack([design[fold == k].T @ design[fold == k] for k in range(years)])
        moments = np.stack([design[fold == k].T @ values[fold == k] for k in range(years)])
        total = 0.0
        for k in range(years):
            gram = grams.sum(0) - grams[k]
            coefficients = np.linalg.solve(gram + 1e-9 * np.eye(len(gram)), moments.sum(0) - moments[k])
            total += float(((values[fold == k] - design[fold == k] @ coefficients) ** 2).sum())
        errors.append(total / values.size)
    best = int(np.argmin(np.asarray(errors))) + 1  # argmin keeps the first, the fewer harmonics, on a tie
    return best, tuple(errors)
