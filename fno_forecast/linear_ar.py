"""The linear baseline: autoregression on principal components, fitted on a training period.

As in the shared data notes: anomalies from the bundle's harmonic climatology, latitude-weighted
(sqrt(cos lat), so that the components are orthogonal under the area-weighted metric), are reduced to
their leading principal components; a linear map with an intercept takes the components at one step to
those at the next (least squares over every pair of consecutive training steps), and a forecast applies
it step after step and adds the climatology at the valid time back.

How many components: 150 as in the notes, but never more than the grid has points nor more than one per
ten training pairs, so that a short record still gives a well-determined map. On a large grid the
components come from a time-strided sample of at most `MAX_PCA_VALUES` values (and are at most as many as
its steps), and the rest of the training data is read in chunks; the card records how many were used.

The same fitted map is a predictor of the lead calibration (`fno_forecast.lead_calibration`), where it
travels in the bundle's arrays (`arrays`, `from_arrays`); its rollout is `LinearARForecast`, in torch, so
the baseline scored by `evaluate` and the predictor a served forecast uses are one computation.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import xarray as xr

from fno_forecast.climatology import Climatology
from fno_forecast.data.grid import latitude_weights
from fno_forecast.data.timeaxis import format_time, times_to_hours

DEFAULT_COMPONENTS = 150
PAIRS_PER_COMPONENT = 10
MAX_PCA_VALUES = 50_000_000  # the components are estimated from at most this many values (times strided)
CHUNK_STEPS = 512
ARRAY_NAMES = ("components", "scale", "transition")


@dataclass(frozen=True)
class LinearAR:
    """Components `(k, point)` in weighted anomaly space, the map `(k + 1, k)` (last row: intercept)."""

    components: np.ndarray
    scale: np.ndarray
    transition: np.ndarray
    climatology: Climatology
    fitted_on: str
    pairs: int

    @property
    def n_components(self) -> int:
        return int(self.components.shape[0])

    def arrays(self) -> dict[str, np.ndarray]:
        """`ARRAY_NAMES` as float32 arrays, for a bundle (`from_arrays` reads them back)."""
        return {name: np.ascontiguousarray(getattr(self, name), dtype=np.float32) for name in ARRAY_NAMES}

    @classmethod
    def from_arrays(
        cls, arrays: dict[str, np.ndarray], *, climatology: Climatology, fitted_on: str, pairs: int
    ) -> LinearAR:
        values = {name: np.asarray(arrays[name], dtype=np.float64) for name in ARRAY_NAMES}
        k = values["components"].shape[0]
        if (
            values["transition"].shape != (k + 1, k)
            or values["scale"].shape != values["components"].shape[1:]
        ):
            raise ValueError(
                f"LinearAR: components {values['components'].shape}, scale {values['scale'].shape} and "
                f"transition {values['transition'].shape} do not fit together"
            )
        return cls(climatology=climatology, fitted_on=fitted_on, pairs=pairs, **values)

    def _project(self, states: np.ndarray, hours: np.ndarray) -> np.ndarray:
        anomaly = np.asarray(states, dtype=np.float64) - self.climatology.at_hours(hours)
        return (anomaly.reshape(len(anomaly), -1) * self.scale) @ self.components.T

    def rollout(
        self, state: np.ndarray, *, init_hours: np.ndarray, step_hours: float, n_steps: int
    ) -> Iterator[np.ndarray]:
        """Yield `n_steps` forecasts `(batch, channel, lat, lon)` float32 from `state` at `init_hours`."""
        hours = np.asarray(init_hours, dtype=np.float64)
        anomaly = np.asarray(state, dtype=np.float64) - self.climatology.at_hours(hours)
        forecast = LinearARForecast(self, torch.from_numpy(anomaly))
        for step in range(1, n_steps + 1):
            clim = self.climatology.at_hours(hours + step * step_hours)
            yield (clim + forecast.next().numpy()).astype(np.float32)


class LinearARForecast:
    """The linear AR's anomaly forecasts `(batch, channel, lat, lon)` float64 from one batch of initial
    anomalies (about the climatology alone), one step per `next()`, on the anomalies' device."""

    def __init__(self, linear: LinearAR, anomaly: torch.Tensor) -> None:
        device = anomaly.device
        self._components = torch.as_tensor(linear.components, dtype=torch.float64, device=device)
        self._scale = torch.as_tensor(linear.scale, dtype=torch.float64, device=device)
        self._transition = torch.as_tensor(linear.transition, dtype=torch.float64, device=device)
        self._shape = anomaly.shape
        flat = anomaly.reshape(anomaly.shape[0], -1).to(torch.float64)
        self._scores = (flat * self._scale) @ self._components.T
        self.steps = 0

    def next(self) -> torch.Tensor:
        """The anomaly one step after the last one asked for."""
        ones = self._scores.new_ones(self._scores.shape[0], 1)
        self._scores = torch.cat([self._scores, ones], dim=1) @ self._transition
        self.steps += 1
        return ((self._scores @ self._components) / self._scale).reshape(self._shape)


def n_components_for(*, points: int, pairs: int, wanted: int = DEFAULT_COMPONENTS) -> int:
    """`min(wanted, points, pairs // PAIRS_PER_COMPONENT)`, at least 1."""
    return max(1, min(wanted, points, pairs // PAIRS_PER_COMPONENT))


def fit_linear_ar(
    train: xr.DataArray,
    climatology: Climatology,
    *,
    step_hours: float,
    n_components: int = DEFAULT_COMPONENTS,
) -> LinearAR | None:
    """Fit on a canonical array `(time, channel, lat, lon)`; None when it holds too few consecutive pairs."""
    hours = times_to_hours(np.asarray(train["time"].values))
    pairs = np.flatnonzero(np.abs(np.diff(hours) - step_hours) < 1e-6)
    points = int(np.prod(train.shape[1:]))
    if pairs.size < 2 * PAIRS_PER_COMPONENT:
        return None
    weights = latitude_weights(np.asarray(train["lat"].values))
    scale = np.sqrt(np.broadcast_to(weights[None, :, None], train.shape[1:])).reshape(-1)
    stride = max(1, int(np.ceil(len(hours) * points / MAX_PCA_VALUES)))
    sample = np.arange(0, len(hours), stride)
    k = min(n_components_for(points=points, pairs=int(pairs.size), wanted=n_components), len(sample) - 1)
    if k < 1:
        return None
    anomaly = np.asarray(train.isel(time=sample).values, dtype=np.float64) - climatology.at_hours(
        hours[sample]
    )
    _, _, vt = np.linalg.svd(anomaly.reshape(len(sample), -1) * scale, full_matrices=False)
    partial = LinearAR(
        components=vt[:k],
        scale=scale,
        transition=np.zeros((k + 1, k)),
        climatology=climatology,
        fitted_on=f"{format_time(train['time'].values[0])}/{format_time(train['time'].values[-1])}",
        pairs=int(pairs.size),
    )
    chunk = max(1, min(CHUNK_STEPS, MAX_PCA_VALUES // points))
    scores = np.concatenate(
        [
            partial._project(train.isel(time=slice(s, s + chunk)).values, hours[s : s + chunk])
            for s in range(0, len(hours), chunk)
        ]
    )
    inputs = np.hstack([scores[pairs], np.ones((pairs.size, 1))])
    transition, *_ = np.linalg.lstsq(inputs, scores[pairs + 1], rcond=None)
    return LinearAR(
        components=partial.components,
        scale=scale,
        transition=transition,
        climatology=climatology,
        fitted_on=partial.fitted_on,
        pairs=partial.pairs,
    )
