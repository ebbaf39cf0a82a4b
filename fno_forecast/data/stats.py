"""Per-channel normalisation statistics, streamed over time in chunks.

`mean` and `std` are over time, lat and lon; `tendency_std` is the std of the one-step tendency
`x[t+1] - x[t]` (what a residual model predicts), taken only across consecutive steps so a gap in the
time axis never counts as one step. Sums run in float64, shifted by the first step's channel means, so
the result does not suffer cancellation on fields like geopotential (~5e4).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from fno_forecast.data.timeaxis import consecutive, detect_step, format_time
from fno_forecast.errors import DataError

BLOCK_BYTES = 256 * 2**20


@dataclass(frozen=True)
class ChannelStats:
    """Float32 `(channel,)` arrays in physical units."""

    mean: np.ndarray
    std: np.ndarray
    tendency_std: np.ndarray

    def __post_init__(self) -> None:
        shapes = {name: np.shape(getattr(self, name)) for name in ("mean", "std", "tendency_std")}
        if len(set(shapes.values())) != 1 or len(shapes["mean"]) != 1:
            raise ValueError(
                f"ChannelStats: mean, std, tendency_std must share one (channel,) shape, got {shapes}"
            )

    def to_dict(self) -> dict[str, Any]:
        return {name: [float(v) for v in getattr(self, name)] for name in ("mean", "std", "tendency_std")}


class Moments:
    """Running float64 sums of (x - shift) and (x - shift)^2 per channel."""

    def __init__(self, shift: np.ndarray) -> None:
        self.shift = shift
        self.count = np.zeros_like(shift)
        self.total = np.zeros_like(shift)
        self.squares = np.zeros_like(shift)

    def add(self, block: np.ndarray) -> None:
        """`block` is `(n, channel, lat, lon)`."""
        centred = block.astype(np.float64) - self.shift[None, :, None, None]
        self.count += block.shape[0] * block.shape[2] * block.shape[3]
        self.total += centred.sum(axis=(0, 2, 3))
        self.squares += np.square(centred).sum(axis=(0, 2, 3))

    def mean_std(self) -> tuple[np.ndarray, np.ndarray]:
        mean = self.total / np.maximum(self.count, 1)
        var = np.maximum(self.squares / np.maximum(self.count, 1) - mean**2, 0.0)
        return mean + self.shift, np.sqrt(var)


def missing_summary(array: xr.DataArray, block: np.ndarray, *, start: int = 0) -> str:
    """What is missing in `block`, steps `start..` of a canonical `array`: the count per channel that has
    any, the first location, and whether the same points are missing at every step of the block (a
    land or sea mask, as an ocean-only field carries) or only at some steps (missing analyses)."""
    bad = ~np.isfinite(block)
    names = [str(c) for c in array["channel"].values]
    counts = bad.sum(axis=(0, 2, 3))
    channels = ", ".join(f"{names[c]} {int(counts[c])}" for c in np.flatnonzero(counts))
    t, c, i, j = (int(v) for v in np.argwhere(bad)[0])
    where = (
        f"first at time {format_time(array['time'].values[start + t])}, channel {names[c]}, "
        f"lat {float(array['lat'].values[i]):g}, lon {float(array['lon'].values[j]):g}"
    )
    static = block.shape[0] > 1 and bool((bad == bad[:1]).all())
    kind = "the same points at every step (a mask)" if static else "at some steps only"
    return f"{int(counts.sum())} missing (NaN/Inf) value(s) by channel: {channels}; {where}; {kind}"


def frame_bytes(array: xr.DataArray, *, itemsize: int = 4) -> int:
    """Bytes of one time step `(channel, lat, lon)` of a canonical array (float32 by default)."""
    return itemsize * int(np.prod([array.sizes[d] for d in ("channel", "lat", "lon")]))


def block_steps(array: xr.DataArray, *, budget_bytes: int = BLOCK_BYTES) -> int:
    """Time steps per block of a streaming pass over `(time, channel, lat, lon)`: as many as fit in
    `budget_bytes` as float64 (at least 1, at most 256), so passes over a store larger than memory stay
    bounded whatever the grid and channel count."""
    return int(max(1, min(256, budget_bytes // max(frame_bytes(array, itemsize=8), 1))))


def compute_stats(array: xr.DataArray, *, chunk_steps: int | None = None) -> ChannelStats:
    """Mean, std and tendency std per channel of a canonical array `(time, channel, lat, lon)`.

    Reads `chunk_steps` time steps at a time (default `block_steps`; plus the one before, for the
    tendency); only per-channel sums stay in memory. A missing value is a DataError that says where
    (`missing_summary`): training needs every value of its period finite.
    """
    if tuple(array.dims) != ("time", "channel", "lat", "lon"):
        raise ValueError(f"compute_stats: expected dims (time, channel, lat, lon), got {array.dims}")
    chunk_steps = block_steps(array) if chunk_steps is None else chunk_steps
    if chunk_steps < 1:
        raise ValueError(f"compute_stats: chunk_steps must be >= 1, got {chunk_steps}")
    n_time = array.sizes["time"]
    if n_time < 2:
        raise DataError(array.attrs.get("source"), f"statistics need at least 2 time steps, got {n_time}")
    times = array["time"].values
    step_hours, step_months = detect_step(times)
    linked = consecutive(times, step_hours=step_hours, step_months=step_months)
    first = np.asarray(array.isel(time=0).values, dtype=np.float64)
    values = Moments(first.mean(axis=(1, 2)))
    tendency = Moments(np.zeros(first.shape[0]))
    previous = None
    for start in range(0, n_time, chunk_steps):
        block = np.asarray(array.isel(time=slice(start, start + chunk_steps)).values, dtype=np.float32)
        if not np.isfinite(block).all():
            end = format_time(times[min(start + block.shape[0], n_time) - 1])
            raise DataError(
                array.attrs.get("source"),
                f"steps {format_time(times[start])}..{end}: {missing_summary(array, block, start=start)}. "
                "Training needs finite values: fill them in the data, or leave that variable out "
                "(`--set variables=[...]`) or those times out of the periods",
            )
        values.add(block)
        joined = block if previous is None else np.concatenate([previous, block], axis=0)
        offset = start - (0 if previous is None else 1)
        diffs = joined[1:] - joined[:-1]
        keep = linked[offset : offset + diffs.shape[0]]
        if keep.any():
            tendency.add(diffs[keep])
        previous = block[-1:]
    mean, std = values.mean_std()
    _, tendency_std = tendency.mean_std()
    if tendency.count.max() == 0:
        raise DataError(array.attrs.get("source"), "no two consecutive time steps: no tendency statistics")
    return ChannelStats(
        mean=mean.astype(np.float32),
        std=std.astype(np.float32),
        tendency_std=tendency_std.astype(np.float32),
    )
