"""Missing values: count them, refuse them in a training period, fill them only when asked.

Reanalysis has no missing values, but a regridded or merged file can carry NaN (decoded `_FillValue`).
Training on NaN silently ruins the weights, so `check_finite` raises a DataError naming the count and
the first location unless a fill policy is given explicitly.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import xarray as xr

from fno_forecast.data.stats import block_steps, missing_summary
from fno_forecast.data.timeaxis import select_period
from fno_forecast.errors import DataError

FillPolicy = Literal["channel_mean", "nearest_time"]
FILL_POLICIES: tuple[str, ...] = ("channel_mean", "nearest_time")


def count_missing(array: xr.DataArray, *, chunk_steps: int | None = None) -> dict[str, Any]:
    """`{"total": n, "by_channel": {name: n}}` of non-finite values of a canonical array (streamed in
    blocks of `chunk_steps`, default `block_steps`)."""
    chunk_steps = block_steps(array) if chunk_steps is None else chunk_steps
    names = [str(c) for c in array["channel"].values]
    counts = np.zeros(len(names), dtype=np.int64)
    for start in range(0, array.sizes["time"], chunk_steps):
        block = np.asarray(array.isel(time=slice(start, start + chunk_steps)).values)
        counts += (~np.isfinite(block)).sum(axis=(0, 2, 3))
    return {"total": int(counts.sum()), "by_channel": {n: int(c) for n, c in zip(names, counts, strict=True)}}


def _forward_fill(values: np.ndarray) -> np.ndarray:
    """Fill NaN along axis 0 with the last finite value before it (NaN stays where there is none)."""
    steps = np.arange(values.shape[0]).reshape(-1, *([1] * (values.ndim - 1)))
    source = np.where(np.isnan(values), 0, steps)
    source = np.maximum.accumulate(source, axis=0)
    return np.take_along_axis(values, source, axis=0)


def check_finite(
    array: xr.DataArray, period: str | tuple[Any, Any] | None = None, *, fill: FillPolicy | None = None
) -> xr.DataArray:
    """The array (restricted to `period` when given), in memory, with every value finite.

    Without `fill`, any NaN/Inf is a DataError giving the count and the first location. With
    `fill="channel_mean"` non-finite values become the channel's mean over the period; with
    `fill="nearest_time"` they take the nearest earlier finite value at that point (later if none).
    """
    if fill is not None and fill not in FILL_POLICIES:
        raise ValueError(f"check_finite.fill must be one of {FILL_POLICIES}, got {fill!r}")
    part = array if period is None else select_period(array, period)
    values = np.asarray(part.values, dtype=np.float32)
    bad = ~np.isfinite(values)
    n_bad = int(bad.sum())
    if n_bad == 0:
        return part.copy(data=values)
    where = f" in period {period}" if period is not None else ""
    if fill is None:
        prefix = f"period {period}: " if period is not None else ""
        raise DataError(
            array.attrs.get("source"),
            f"{prefix}{missing_summary(part, values)}; fill only when asked (fill={' or '.join(FILL_POLICIES)})",
        )
    values = np.where(bad, np.nan, values)
    if fill == "channel_mean":
        means = np.nanmean(values, axis=(0, 2, 3))
        if np.isnan(means).any():
            channel = part["channel"].values[int(np.argmax(np.isnan(means)))]
            raise DataError(
                array.attrs.get("source"), f"channel {channel} has no finite value{where} to fill from"
            )
        values = np.where(bad, means[None, :, None, None], values)
    else:
        filled = _forward_fill(_forward_fill(values)[::-1])[::-1]
        if np.isnan(filled).any():
            raise DataError(array.attrs.get("source"), f"a grid point has no finite value at any time{where}")
        values = filled.astype(np.float32)
    out = part.copy(data=values)
    out.attrs = {**part.attrs, "filled": f"{n_bad} value(s) filled with {fill}"}
    return out
