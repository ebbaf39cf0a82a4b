"""Geometry of a regular latitude/longitude grid: area weights and longitude conventions.

Every grid cell of a regular lat/lon grid covers an area proportional to cos(latitude), so spatial means
weight each row by cos(lat) normalised to mean 1 (the WeatherBench convention, also used by the RMSE
baselines in the shared data notes). The loss, the scores, the plots and the recent-anomaly fit all take
their weights from here, so that a training loss and the skill it is judged by weight the globe alike.
Longitudes come in any convention (-180..180 or 0..360); `wrap_longitude` moves one into a grid's.
"""

from __future__ import annotations

import numpy as np
import torch


def latitude_weights(lat: np.ndarray) -> np.ndarray:
    """cos(latitude) weights `(lat,)` float64, normalised to mean 1; `lat` in degrees.

    Rows at the poles get weight 0 (their cells have no area), never a negative weight.
    """
    lat = np.asarray(lat, dtype=np.float64)
    if lat.ndim != 1 or lat.size == 0:
        raise ValueError(f"latitude_weights: lat must be a non-empty 1-D array, got shape {lat.shape}")
    if np.any(np.abs(lat) > 90.0):
        raise ValueError("latitude_weights: lat must lie within [-90, 90] degrees")
    weights = np.clip(np.cos(np.deg2rad(lat)), 0.0, None)
    if weights.sum() <= 0.0:
        raise ValueError("latitude_weights: all latitudes are at the poles; the weights sum to zero")
    return weights / weights.mean()


def latitude_weight_tensor(lat: np.ndarray) -> torch.Tensor:
    """`latitude_weights` as a float32 tensor `(1, 1, lat, 1)` that broadcasts over `(B, C, H, W)`."""
    return torch.from_numpy(latitude_weights(lat).astype(np.float32)).view(1, 1, -1, 1)


def weighted_rmse_2d(error: np.ndarray, lat: np.ndarray) -> float:
    """Latitude-weighted RMSE of one field `(lat, lon)` of forecast minus truth."""
    squared = np.asarray(error, dtype=np.float64) ** 2
    return float(np.sqrt(np.mean(squared * latitude_weights(lat)[:, None])))


def wrap_longitude(lon: float | np.ndarray, *, start: float) -> float | np.ndarray:
    """Longitude(s) in degrees moved into `[start, start + 360)`, e.g. -100 -> 260 for a grid from 0."""
    if isinstance(lon, np.ndarray):
        return start + np.mod(lon.astype(np.float64) - start, 360.0)
    return start + (float(lon) - start) % 360.0
