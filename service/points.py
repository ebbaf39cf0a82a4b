"""Point extraction from a gridded forecast: longitude conventions, domain checks, nearest and bilinear.

Grids are regular, latitude descending and longitude ascending (the canonical layout). A request's longitude
may use any convention (-100 and 260 are the same meridian); it is mapped onto the grid's own range.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from fno_forecast.data.grid import wrap_longitude
from fno_forecast.data.schema import GridInfo

CellSelection = Literal["bilinear", "nearest"]


class OutsideDomain(ValueError):
    """A location lies outside the model's grid; the message states the domain, `parameter` the axis."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter


@dataclass(frozen=True)
class PointWeights:
    """How to read one location: up to four grid cells and their weights (summing to 1).

    `latitude` and `longitude` are the location the values stand for: the grid point for `nearest`,
    the requested point for `bilinear`, with the longitude in the request's own convention.
    """

    lat_index: tuple[int, ...]
    lon_index: tuple[int, ...]
    weights: tuple[float, ...]
    latitude: float
    longitude: float

    def apply(self, values: np.ndarray) -> np.ndarray:
        """`values (..., lat, lon)` -> `(...)`, the weighted sum over this point's cells."""
        out = np.zeros(values.shape[:-2], dtype=np.float64)
        for i, j, w in zip(self.lat_index, self.lon_index, self.weights, strict=True):
            out += w * values[..., i, j]
        return out


def describe_domain(grid: GridInfo) -> str:
    lat_lo, lat_hi = min(grid.lat), max(grid.lat)
    if grid.is_global:
        return f"latitude {lat_lo:g}..{lat_hi:g}, all longitudes"
    return f"latitude {lat_lo:g}..{lat_hi:g}, longitude {grid.lon[0]:g}..{grid.lon[-1]:g} (degrees east)"


def _bracket(axis: np.ndarray, value: float) -> tuple[int, int, float]:
    """Indices `i, i+1` of an ascending axis around `value` and the weight of `i+1`."""
    j = int(np.searchsorted(axis, value, side="right"))
    j = min(max(j, 1), len(axis) - 1)
    i = j - 1
    span = axis[j] - axis[i]
    frac = 0.0 if span == 0 else float((value - axis[i]) / span)
    return i, j, min(max(frac, 0.0), 1.0)


def point_weights(grid: GridInfo, lat: float, lon: float, *, method: CellSelection) -> PointWeights:
    """Weights to read `(lat, lon)` from `grid`; raises OutsideDomain when the point is not covered."""
    if not grid.contains(lat, lon):
        parameter = "latitude" if not min(grid.lat) <= lat <= max(grid.lat) else "longitude"
        raise OutsideDomain(
            parameter, f"location ({lat:g}, {lon:g}) is outside the model domain: {describe_domain(grid)}"
        )
    lats = np.asarray(grid.lat, dtype=np.float64)
    lons = np.asarray(grid.lon, dtype=np.float64)
    glon = float(wrap_longitude(lon, start=grid.lon[0]))
    shift = lon - glon  # to express grid longitudes in the request's convention
    lat_asc = lats[::-1]
    nlat = len(lats)
    lons_ext = np.append(lons, lons[0] + 360.0) if grid.is_global else lons
    if method == "nearest":
        i = int(np.argmin(np.abs(lats - lat)))
        dist = np.abs(lons_ext - glon)
        j = int(np.argmin(dist)) % len(lons)
        grid_lon = float(lons[j])
        if grid_lon - glon > 180.0:
            grid_lon -= 360.0
        return PointWeights((i,), (j,), (1.0,), float(lats[i]), grid_lon + shift)
    ia, ib, fy = _bracket(lat_asc, lat)
    ja, jb, fx = _bracket(lons_ext, glon)
    rows = (nlat - 1 - ia, nlat - 1 - ib)
    cols = (ja % len(lons), jb % len(lons))
    cells = [
        (rows[0], cols[0], (1 - fy) * (1 - fx)),
        (rows[0], cols[1], (1 - fy) * fx),
        (rows[1], cols[0], fy * (1 - fx)),
        (rows[1], cols[1], fy * fx),
    ]
    cells = [c for c in cells if c[2] > 0.0] or [cells[0][:2] + (1.0,)]
    return PointWeights(
        tuple(c[0] for c in cells),
        tuple(c[1] for c in cells),
        tuple(float(c[2]) for c in cells),
        float(lat),
        float(lon),
    )
