"""The damped-anomaly prior: per grid point, how fast anomalies from climatology decay in one step.

With anomalies `a_t = x_t - clim(t)`, the least-squares AR(1) coefficient is
`phi = sum(a_t a_{t+1}) / sum(a_t^2)` over consecutive steps of the training period, and the relaxation
rate is `r = 1 - phi`, clipped to [0, 1]. The stepper adds the climatological tendency and applies
`next -= r * (state - clim(t))`, so an untrained network already forecasts damped persistence of
anomalies (which tends to climatology at long leads), and the network learns the rest.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from fno_forecast.climatology import Climatology
from fno_forecast.data.stats import block_steps
from fno_forecast.data.timeaxis import consecutive, detect_step, times_to_hours


def fit_relaxation(
    array: xr.DataArray, climatology: Climatology, *, chunk_steps: int | None = None
) -> np.ndarray:
    """Relaxation rates `(channel, lat, lon)` float32 in [0, 1] from a canonical training array, read
    `chunk_steps` at a time (default: the streaming passes' block, `fno_forecast.data.stats.block_steps`)."""
    chunk_steps = block_steps(array) if chunk_steps is None else chunk_steps
    times = array["time"].values
    step_hours, step_months = detect_step(times)
    linked = consecutive(times, step_hours=step_hours, step_months=step_months)
    hours = times_to_hours(times)
    shape = tuple(array.sizes[d] for d in ("channel", "lat", "lon"))
    lagged = np.zeros(shape)
    power = np.zeros(shape)
    previous = None
    n_time = array.sizes["time"]
    for start in range(0, n_time, chunk_steps):
        stop = min(start + chunk_steps, n_time)
        block = np.asarray(array.isel(time=slice(start, stop)).values, dtype=np.float64)
        anomalies = block - climatology.at_hours(hours[start:stop]).astype(np.float64)
        joined = anomalies if previous is None else np.concatenate([previous, anomalies], axis=0)
        offset = start - (0 if previous is None else 1)
        keep = linked[offset : offset + joined.shape[0] - 1]
        lagged += np.einsum("tchw,tchw->chw", joined[:-1][keep], joined[1:][keep])
        power += np.einsum("tchw,tchw->chw", joined[:-1][keep], joined[:-1][keep])
        previous = anomalies[-1:]
    phi = lagged / np.maximum(power, 1e-12)
    return np.clip(1.0 - phi, 0.0, 1.0).astype(np.float32)
