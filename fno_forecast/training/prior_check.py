"""Keep the relaxation prior only where it beats persistence on held-out windows of the training period.

The prior (damped anomaly persistence toward the climatology, `training.relaxation`) is what an untrained
stepper forecasts. Whether it helps depends on the data: with a climatology that a short period cannot pin
down, relaxing toward it pulls forecasts away from the truth. So it is checked out of sample inside the
training period: climatology and relaxation rates fitted on the first two thirds, both forecasts scored
on the last third at the validation leads (latitude-weighted RMSE over channel std, averaged over
channels). The prior is kept when its mean ratio to persistence over the leads is below 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from fno_forecast.climatology import fit_climatology
from fno_forecast.data.grid import latitude_weights
from fno_forecast.data.timeaxis import format_time, times_to_hours
from fno_forecast.data.windows import window_starts
from fno_forecast.training.relaxation import fit_relaxation


@dataclass(frozen=True)
class PriorCheck:
    """Held-out RMSE per lead (in units of channel std) of the prior and of persistence."""

    lead_steps: tuple[int, ...]
    prior: tuple[float, ...]
    persistence: tuple[float, ...]
    held_out: str

    @property
    def ratio(self) -> float:
        return float(np.mean(np.asarray(self.prior) / np.maximum(np.asarray(self.persistence), 1e-12)))

    @property
    def beats_persistence(self) -> bool:
        return self.ratio < 1.0

    def describe(self) -> str:
        pairs = ", ".join(
            f"{s} step(s) {p:.3f} vs {q:.3f}"
            for s, p, q in zip(self.lead_steps, self.prior, self.persistence, strict=True)
        )
        return f"held-out {self.held_out}, prior vs persistence in std units: {pairs} (mean ratio {self.ratio:.2f})"


def check_prior(
    train_array: xr.DataArray, *, annual: int, diurnal: int, lead_steps: tuple[int, ...]
) -> PriorCheck | None:
    """Score the prior against persistence out of sample; None when the training period is too short."""
    n_time = train_array.sizes["time"]
    split = int(round(n_time * 2 / 3))
    n_terms = 1 + 2 * annual + 2 * diurnal
    longest = max(lead_steps)
    if split < max(2 * n_terms, 4) or n_time - split < longest + 2:
        return None
    first, rest = train_array.isel(time=slice(0, split)), train_array.isel(time=slice(split, None))
    climatology = fit_climatology(first, annual=annual, diurnal=diurnal)
    keep = 1.0 - fit_relaxation(first, climatology).astype(np.float64)
    times = rest["time"].values
    hours = times_to_hours(times)
    values = np.asarray(rest.values, dtype=np.float64)
    clim = climatology.at_hours(hours).astype(np.float64)
    anomalies = values - clim
    std = values.std(axis=(0, 2, 3)).clip(min=1e-12)[None, :, None, None]
    weights = latitude_weights(rest["lat"].values)[None, None, :, None]
    prior_rmse, persistence_rmse = [], []
    for steps in lead_steps:
        inits = window_starts(times, rollout_steps=steps, use_history=False)
        if inits.size == 0:
            return None
        truth = values[inits + steps]
        prior = clim[inits + steps] + keep[None] ** steps * anomalies[inits]
        persistence = values[inits]
        for forecast, out in ((prior, prior_rmse), (persistence, persistence_rmse)):
            mse = (weights * ((forecast - truth) / std) ** 2).mean(axis=(0, 2, 3))
            out.append(float(np.mean(np.sqrt(mse))))
    held_out = f"{format_time(times[0])}/{format_time(times[-1])}"
    return PriorCheck(tuple(lead_steps), tuple(prior_rmse), tuple(persistence_rmse), held_out)
