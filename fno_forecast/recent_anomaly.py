"""Correct the climatology toward the recent anomaly, by an amount fitted out of sample.

A harmonic climatology fitted on one or two years has sampling error: a cool summer in the training data
*is* the climatology of summer. Inside the training period the anomalies from that climatology are
small and do not persist (the fit absorbed them), so a network trained there learns to relax every
anomaly back to it. Outside the training period the climatology is off by a slowly varying field, and
the recent anomaly carries that error into the future: the mean anomaly of the last two to three weeks
predicts the 5-10 day anomaly (on the NCEP data the held-out fit picks 21 days; `fno-forecast info`
prints the window, its factor and its held-out error).

How much of it persists cannot be measured in sample, so it is fitted by cross-validation inside the
training period: a climatology fitted on its first two thirds (and at least the annual cycle, less a
month: `climatology.cross_validation_split`), anomalies on the held-out rest,
and per channel the least-squares coefficient `c` of the 5-10 day anomaly on the mean anomaly of the
previous `D` days, for several windows `D`. A forecast then relaxes toward `clim + c * mean anomaly of
the last D days` (the stepper's `climatology_offset`), using the window with the lowest held-out error
that the initial state's history covers, or none when it covers none.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from fno_forecast.climatology import Climatology, cross_validation_split, fit_climatology, harmonic_design
from fno_forecast.data.grid import latitude_weights
from fno_forecast.data.stats import BLOCK_BYTES, frame_bytes
from fno_forecast.data.timeaxis import (
    HOURS_PER_MONTH,
    months_per_step,
    regular_hours,
    steps_before,
    times_to_hours,
)

DEFAULT_WINDOW_DAYS: tuple[float, ...] = (1.0, 2.0, 3.0, 5.0, 7.0, 10.0, 14.0, 21.0, 30.0)
# on data of a month or coarser a window of days is at most one step: windows of months instead (a slow
# mode such as ENSO shows in the mean anomaly of the last seasons, not of the last state)
MONTH_WINDOWS: tuple[int, ...] = (1, 2, 3, 6, 12)
DEFAULT_TARGET_HOURS: tuple[float, float] = (120.0, 240.0)


@dataclass(frozen=True)
class RecentAnomalyCorrection:
    """Coefficients per window (days) and channel, and the held-out RMSE each window achieved."""

    window_days: tuple[float, ...]
    coefficients: tuple[tuple[float, ...], ...]
    heldout_rmse: tuple[float, ...]
    climatology_rmse: float
    fitted_on: str
    held_out: str
    target_hours: tuple[float, float] = DEFAULT_TARGET_HOURS

    def to_dict(self) -> dict[str, Any]:
        return {
            "window_days": list(self.window_days),
            "coefficients": [list(c) for c in self.coefficients],
            "heldout_rmse": list(self.heldout_rmse),
            "climatology_rmse": self.climatology_rmse,
            "fitted_on": self.fitted_on,
            "held_out": self.held_out,
            "target_hours": list(self.target_hours),
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RecentAnomalyCorrection:
        correction = cls(
            window_days=tuple(float(d) for d in values["window_days"]),
            coefficients=tuple(tuple(float(x) for x in c) for c in values["coefficients"]),
            heldout_rmse=tuple(float(r) for r in values["heldout_rmse"]),
            climatology_rmse=float(values["climatology_rmse"]),
            fitted_on=str(values["fitted_on"]),
            held_out=str(values["held_out"]),
            target_hours=tuple(float(h) for h in values.get("target_hours", DEFAULT_TARGET_HOURS)),  # type: ignore[arg-type]
        )
        n = len(correction.window_days)
        if len(correction.coefficients) != n or len(correction.heldout_rmse) != n:
            raise ValueError("recent_anomaly: window_days, coefficients and heldout_rmse differ in length")
        if len({len(c) for c in correction.coefficients}) > 1:
            raise ValueError("recent_anomaly: every window needs one coefficient per channel")
        return correction

    @property
    def n_channels(self) -> int:
        return len(self.coefficients[0]) if self.coefficients else 0

    def ranked_windows(self) -> list[int]:
        """Window indices, best held-out RMSE first; windows no better than climatology are left out."""
        useful = [i for i, r in enumerate(self.heldout_rmse) if r < self.climatology_rmse]
        return sorted(useful, key=lambda i: self.heldout_rmse[i])


def fit_settings(
    *, times: Any, annual: int, step_hours: float, lead_steps: tuple[int, ...]
) -> tuple[tuple[float, ...], tuple[float, float]]:
    """`(window_days, target_hours)` that follow the data: the target is the second half of the validation
    leads (NCEP's 6..240 h gives 120..240 h), the windows those of `DEFAULT_WINDOW_DAYS` that the held-out
    part of the training steps `times` (`climatology.cross_validation_split` with `annual` harmonics)
    can hold before the target (3 weeks of hourly data: 1 to 5 days; monthly data: those of
    `MONTH_WINDOWS`)."""
    longest = max(lead_steps)
    low = max(min(lead_steps), int(math.ceil(longest / 2)))
    target = (low * step_hours, longest * step_hours)
    hours = times_to_hours(times)
    room = len(hours) - cross_validation_split(hours, annual=annual) - longest - 8
    candidates = DEFAULT_WINDOW_DAYS
    if months_per_step(step_hours):
        candidates = tuple(months * HOURS_PER_MONTH / 24.0 for months in MONTH_WINDOWS)
    windows = tuple(d for d in candidates if _window_steps(d, step_hours) <= room // 2)
    return windows, target


def window_text(days: float) -> str:
    """`"21-day"`, or `"3-month"` for a window of `MONTH_WINDOWS` (whole calendar months, as
    `timeaxis.months_per_step` tells a step of them)."""
    months = months_per_step(days * 24.0)
    return f"{months}-month" if months else f"{days:g}-day"


def _window_steps(days: float, step_hours: float) -> int:
    return max(1, int(round(days * 24.0 / step_hours)))


MAX_HELDOUT_POINTS = 4096  # grid points per channel the held-out scores read (every k-th lat and lon)


def fit_recent_anomaly_correction(
    train_array: xr.DataArray,
    climatology: Climatology,
    *,
    step_hours: float,
    window_days: tuple[float, ...] = DEFAULT_WINDOW_DAYS,
    target_hours: tuple[float, float] = DEFAULT_TARGET_HOURS,
    fit_array: xr.DataArray | None = None,
    max_heldout_steps: int = 0,
) -> RecentAnomalyCorrection | None:
    """Fit the coefficients on a canonical training array; None when it is too short to hold a part out.

    `climatology` gives the number of harmonics; the cross-validation refits them on the first two thirds
    and at least the annual cycle (`climatology.cross_validation_split`; of `fit_array`'s steps there
    when given: a sample of a long period, `fno_forecast.data.fit_sample`). The held-out part is the
    rest, its last `max_heldout_steps` only when that is set (0: all of
    it), read once at every k-th latitude and longitude where the grid has over `MAX_HELDOUT_POINTS`
    points (the coefficients are one per channel) and scored a channel at a time, so its memory stays
    bounded on any grid.
    """
    times = train_array["time"].values
    hours = times_to_hours(times)
    n_time = len(times)
    split = cross_validation_split(hours, annual=climatology.annual)
    lead_lo = max(1, int(round(target_hours[0] / step_hours)))
    lead_hi = max(lead_lo, int(round(target_hours[1] / step_hours)))
    longest = max((_window_steps(d, step_hours) for d in window_days), default=0)
    n_terms = 1 + 2 * climatology.annual + 2 * climatology.diurnal
    if not window_days or split < 2 * n_terms or n_time - split < longest + lead_hi + 8:
        return None
    start = max(split, n_time - max_heldout_steps) if max_heldout_steps > 0 else split
    if not regular_hours(hours[start:], step_hours):
        return None  # the cumulative sums below need a regular held-out time axis
    first = train_array.isel(time=slice(0, split))
    if fit_array is not None:
        first = steps_before(fit_array, times[split])
    if first.sizes["time"] < 2 * n_terms:
        return None
    first = fit_climatology(first, annual=climatology.annual, diurnal=climatology.diurnal)
    held = train_array.isel(time=slice(start, None))
    k = 1
    while math.ceil(held.sizes["lat"] / k) * math.ceil(held.sizes["lon"] / k) > MAX_HELDOUT_POINTS:
        k += 1
    held = held.isel(lat=slice(None, None, k), lon=slice(None, None, k))
    values = np.asarray(held.values, dtype=np.float32)  # read once
    clim = first.coefficients[:, :, ::k, ::k]
    weights = latitude_weights(train_array["lat"].values)[::k][None, :, None]
    n_leads = lead_hi - lead_lo + 1
    inits = np.arange(longest - 1, values.shape[0] - lead_hi)
    spatial_count = float(np.prod(values.shape[2:])) * len(inits) * n_leads
    design = harmonic_design(hours[start:], annual=first.annual, diurnal=first.diurnal)
    base = np.zeros(values.shape[1])
    cross = np.zeros((len(window_days), values.shape[1]))
    power = np.zeros((len(window_days), values.shape[1]))
    for c in range(values.shape[1]):  # one channel's cumulative sums in memory at a time
        anomalies = values[:, c].astype(np.float64) - np.tensordot(
            design, clim[:, c].astype(np.float64), axes=(1, 0)
        ).astype(np.float32)
        zero = np.zeros((1, *anomalies.shape[1:]))
        csum = np.concatenate([zero, np.cumsum(anomalies, axis=0)])
        csum2 = np.concatenate([zero, np.cumsum(anomalies**2, axis=0)])
        # For init t: the sum (and sum of squares) of the anomalies at t + lead_lo .. t + lead_hi.
        target_sum = csum[inits + lead_hi + 1] - csum[inits + lead_lo]
        base[c] = (weights * (csum2[inits + lead_hi + 1] - csum2[inits + lead_lo])).sum()
        for w, days in enumerate(window_days):
            n = _window_steps(days, step_hours)
            recent = (csum[inits + 1] - csum[inits + 1 - n]) / n
            cross[w, c] = (weights * recent * target_sum).sum()
            power[w, c] = n_leads * (weights * recent**2).sum()
    coefficients, rmse = [], []
    for w in range(len(window_days)):
        coefficient = np.clip(cross[w] / np.maximum(power[w], 1e-12), 0.0, 1.0)
        error = base - 2 * coefficient * cross[w] + coefficient**2 * power[w]
        coefficients.append(tuple(float(c) for c in coefficient))
        rmse.append(float(np.sqrt(np.mean(error / spatial_count))))
    return RecentAnomalyCorrection(
        window_days=tuple(float(d) for d in window_days),
        coefficients=tuple(coefficients),
        heldout_rmse=tuple(rmse),
        climatology_rmse=float(np.sqrt(np.mean(base / spatial_count))),
        fitted_on=f"{_hour(times[0])}/{_hour(times[split - 1])}",
        held_out=f"{_hour(times[start])}/{_hour(times[-1])}",
        target_hours=(float(target_hours[0]), float(target_hours[1])),
    )


def _hour(value: Any) -> str:
    return str(np.datetime_as_string(np.datetime64(value, "h"), unit="h"))


def recent_anomaly_offsets(
    correction: RecentAnomalyCorrection,
    *,
    climatology: Climatology,
    block: np.ndarray,
    block_hours: np.ndarray,
    init_positions: np.ndarray,
    step_hours: float,
) -> tuple[np.ndarray, list[float]]:
    """Offsets `(B, C, H, W)` float32 for the inits at `init_positions` of `block` `(T, C, H, W)`.

    Each init uses the best-ranked window whose steps all lie in `block`, regularly spaced and finite,
    and gets a zero offset (window 0 days) when none does. Returns the offsets and the days used per init.
    """
    block_hours = np.asarray(block_hours, dtype=np.float64)
    ranked = correction.ranked_windows()
    offsets = np.zeros((len(init_positions), *block.shape[1:]), dtype=np.float32)
    used: list[float] = []
    for row, position in enumerate(np.asarray(init_positions, dtype=np.int64)):
        chosen = 0.0
        for index in ranked:
            n = _window_steps(correction.window_days[index], step_hours)
            start = position - n + 1
            if start < 0:
                continue
            span = block_hours[start : position + 1]
            if not regular_hours(span, step_hours):
                continue
            window = np.asarray(block[start : position + 1], dtype=np.float64)
            if not np.isfinite(window).all():
                continue
            anomaly = (window - climatology.at_hours(span).astype(np.float64)).mean(axis=0)
            coefficient = np.asarray(correction.coefficients[index], dtype=np.float64)
            offsets[row] = (coefficient[:, None, None] * anomaly).astype(np.float32)
            chosen = correction.window_days[index]
            break
        used.append(chosen)
    return offsets, used


def longest_window_steps(correction: RecentAnomalyCorrection | None, step_hours: float) -> int:
    """How many steps before an init the longest window reaches (0 without a correction)."""
    if correction is None or not correction.window_days:
        return 0
    return max(_window_steps(d, step_hours) for d in correction.window_days) - 1


def offsets_at(
    correction: RecentAnomalyCorrection,
    *,
    climatology: Climatology,
    array: xr.DataArray,
    positions: np.ndarray,
    step_hours: float,
    history_steps: int | None = None,
    budget_bytes: int = BLOCK_BYTES,
) -> tuple[np.ndarray, list[float]]:
    """Offsets `(B, C, H, W)` float32 for the inits at time `positions` of `array`, from the steps before
    each (only `history_steps` up to it where given, as a forecast served from that much history sees),
    and the days used per init. The history is read in blocks of at most `budget_bytes` (float32), as
    many neighbouring inits per block as fit, so on a large grid inits far apart never read the span
    between them."""
    positions = np.asarray(positions, dtype=np.int64)
    reach = longest_window_steps(correction, step_hours)
    if history_steps is not None:
        reach = min(reach, history_steps - 1)
    frame = frame_bytes(array)
    most = max(reach + 1, budget_bytes // max(frame, 1))  # steps per read
    offsets = np.zeros((positions.size, *(array.sizes[d] for d in ("channel", "lat", "lon"))), np.float32)
    used = [0.0] * positions.size
    order = np.argsort(positions, kind="stable")
    times = array["time"].values
    i = 0
    while i < order.size:
        low = max(0, int(positions[order[i]]) - reach)
        j = i + 1
        while j < order.size and int(positions[order[j]]) + 1 - low <= most:
            j += 1
        group = order[i:j]
        high = int(positions[group].max()) + 1
        block = np.asarray(array.isel(time=slice(low, high)).values, dtype=np.float32)
        hours = times_to_hours(times[low:high])
        for row in group if history_steps is not None else [group]:
            rows = np.atleast_1d(row)
            start = 0 if history_steps is None else max(0, int(positions[row]) - low - history_steps + 1)
            stop = high - low if history_steps is None else int(positions[row]) - low + 1
            offset, days = recent_anomaly_offsets(
                correction,
                climatology=climatology,
                block=block[start:stop],
                block_hours=hours[start:stop],
                init_positions=positions[rows] - low - start,
                step_hours=step_hours,
            )
            offsets[rows] = offset
            for k, day in zip(rows, days, strict=True):
                used[int(k)] = day
        i = j
    return offsets, used
