"""Forecast skill metrics on a latitude/longitude grid.

Spatial means weight each row by `fno_forecast.data.grid.latitude_weights` (cos(lat), mean 1). The metrics work on arrays
`(batch, channel, lat, lon)` and return one number per `(batch, channel)`; `SkillAccumulator` sums those
over many inits so that a whole period is scored lead by lead without keeping the fields:

- RMSE: the square root of the time mean of the weighted spatial mean squared error (the definition of
  the baselines in the shared data notes, so the numbers are comparable).
- ACC: the anomaly correlation of forecast and truth against a climatology, per init (weighted, centred
  on the climatology, not on the spatial mean), then averaged over inits.
- Bias: the time mean of the weighted spatial mean of forecast minus truth.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

METRICS: tuple[str, ...] = ("rmse", "acc", "bias")


def _check(name: str, *arrays: np.ndarray) -> None:
    shape = arrays[0].shape
    if len(shape) != 4:
        raise ValueError(f"{name}: expected arrays (batch, channel, lat, lon), got shape {shape}")
    for array in arrays[1:]:
        if array.shape != shape:
            raise ValueError(f"{name}: shapes differ, {shape} vs {array.shape}")


def _spatial_mean(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted mean over (lat, lon) of `(batch, channel, lat, lon)` -> `(batch, channel)`."""
    return np.einsum("bchw,h->bc", values, weights) / (weights.sum() * values.shape[-1])


def weighted_mse(forecast: np.ndarray, truth: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Latitude-weighted spatial mean squared error `(batch, channel)`."""
    _check("weighted_mse", forecast, truth)
    error = np.asarray(forecast, dtype=np.float64) - np.asarray(truth, dtype=np.float64)
    return _spatial_mean(error * error, weights)


def weighted_bias(forecast: np.ndarray, truth: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Latitude-weighted spatial mean of forecast minus truth `(batch, channel)`."""
    _check("weighted_bias", forecast, truth)
    error = np.asarray(forecast, dtype=np.float64) - np.asarray(truth, dtype=np.float64)
    return _spatial_mean(error, weights)


def anomaly_correlation(
    forecast: np.ndarray, truth: np.ndarray, climatology: np.ndarray, weights: np.ndarray
) -> np.ndarray:
    """Latitude-weighted anomaly correlation `(batch, channel)`, anomalies taken from `climatology`.

    A field identical to the climatology has no anomaly and no defined correlation: NaN there.
    """
    _check("anomaly_correlation", forecast, truth, climatology)
    clim = np.asarray(climatology, dtype=np.float64)
    fa = np.asarray(forecast, dtype=np.float64) - clim
    ta = np.asarray(truth, dtype=np.float64) - clim
    covariance = _spatial_mean(fa * ta, weights)
    variance = _spatial_mean(fa * fa, weights) * _spatial_mean(ta * ta, weights)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(variance > 0.0, covariance / np.sqrt(variance), np.nan)


@dataclass
class SkillAccumulator:
    """Per-init scores of one forecast system, keyed by lead hours, in the order the inits were added.

    `add(lead, forecast, truth, climatology)` takes a batch of inits `(batch, channel, lat, lon)`;
    `result()` gives `{metric: {lead: (channel,) array}}` over everything added; ACC averages only the
    inits where it is defined (NaN where it never is, as for the climatology forecast itself).
    `per_init(lead)` gives `{metric: (init, channel)}` (MSE for "rmse") for the bootstrap intervals.
    """

    weights: np.ndarray
    n_channels: int
    _rows: dict[float, list[np.ndarray]] = field(default_factory=dict)

    def add(
        self, lead_hours: float, forecast: np.ndarray, truth: np.ndarray, climatology: np.ndarray
    ) -> None:
        if forecast.shape[1] != self.n_channels:
            raise ValueError(
                f"SkillAccumulator.add: expected {self.n_channels} channels, got {forecast.shape[1]}"
            )
        rows = np.stack(
            [
                weighted_mse(forecast, truth, self.weights),
                anomaly_correlation(forecast, truth, climatology, self.weights),
                weighted_bias(forecast, truth, self.weights),
            ],
            axis=1,
        )
        self._rows.setdefault(float(lead_hours), []).append(rows)

    @property
    def leads(self) -> tuple[float, ...]:
        return tuple(sorted(self._rows))

    def count(self, lead_hours: float) -> int:
        return sum(len(rows) for rows in self._rows.get(float(lead_hours), []))

    def per_init(self, lead_hours: float) -> dict[str, np.ndarray]:
        """`{metric: (init, channel) float64}`: the MSE under "rmse", the ACC (NaN where undefined), the bias."""
        rows = np.concatenate(self._rows[float(lead_hours)], axis=0)
        return {metric: rows[:, index] for index, metric in enumerate(METRICS)}

    def result(self) -> dict[str, dict[float, np.ndarray]]:
        out: dict[str, dict[float, np.ndarray]] = {metric: {} for metric in METRICS}
        for lead in self.leads:
            scores = self.per_init(lead)
            out["rmse"][lead] = np.sqrt(scores["rmse"].mean(axis=0))
            acc = scores["acc"]
            defined = np.isfinite(acc).sum(axis=0)
            with np.errstate(divide="ignore", invalid="ignore"):
                out["acc"][lead] = np.where(defined > 0, np.nansum(acc, axis=0) / defined, np.nan)
            out["bias"][lead] = scores["bias"].mean(axis=0)
        return out
