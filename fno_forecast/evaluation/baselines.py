"""Reference forecasts a model has to beat: persistence and climatology, and the names of all systems.

All are scored on exactly the inits and leads of the model, so a score card compares like with like.
Persistence repeats the analysis at the init time for every lead; climatology predicts the fitted
harmonic climatology (the bundle's, fitted on the training period) at the valid time. The bundle's own
prior without the network is in `fno_forecast.evaluation.prior`, the linear autoregression on principal
components in `fno_forecast.linear_ar`, the linear dynamics in spherical-harmonic space (global
grids with both poles) in `fno_forecast.models.linear_spectral`.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from fno_forecast.climatology import Climatology

BASELINES: tuple[str, ...] = ("persistence", "climatology")
BaselineName = Literal["persistence", "climatology"]
SYSTEM_LABELS: dict[str, str] = {
    "model": "model",
    "persistence": "persistence",
    "climatology": "climatology",
    "prior": "prior alone",  # the bundle's own: damped anomaly or linear spectral
    "prior_recent": "prior + recent anomaly",
    "prior_calibrated": "prior + lead calibration",
    "prior_recent_calibrated": "prior + both corrections",
    "linear_ar": "linear AR on PCs",
    "linear_spectral": "linear spectral (per m)",
}


def system_label(name: str) -> str:
    """The display name of a scored system (its key where it has none)."""
    return SYSTEM_LABELS.get(name, name)


def persistence_forecast(init_state: np.ndarray, *, lead_hours: float) -> np.ndarray:
    """The persistence forecast `(batch, channel, lat, lon)`: the init state, whatever the lead."""
    if lead_hours < 0:
        raise ValueError(f"persistence_forecast: lead_hours must be >= 0, got {lead_hours}")
    return np.asarray(init_state)


def climatology_forecast(climatology: Climatology, *, valid_hours: np.ndarray) -> np.ndarray:
    """The climatology forecast `(batch, channel, lat, lon)` at valid times (hours since the epoch)."""
    return climatology.at_hours(np.asarray(valid_hours, dtype=np.float64))


def baseline_forecast(
    name: BaselineName,
    *,
    init_state: np.ndarray,
    lead_hours: float,
    valid_hours: np.ndarray,
    climatology: Climatology,
) -> np.ndarray:
    """One of `BASELINES` by name, for a batch of inits."""
    if name == "persistence":
        return persistence_forecast(init_state, lead_hours=lead_hours)
    if name == "climatology":
        return climatology_forecast(climatology, valid_hours=valid_hours)
    raise ValueError(f"baseline_forecast: unknown baseline {name!r}; expected one of {BASELINES}")
