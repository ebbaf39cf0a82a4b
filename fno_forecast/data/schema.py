"""The channel schema: what a canonical array holds, in a form that travels as JSON.

A canonical array is an `xr.DataArray` named `state` with dims `(time, channel, lat, lon)`, float32,
latitude descending (north to south, as ERA5 and NCEP store it), longitude ascending, and a `channel`
coordinate of strings named `{var}` or `{var}{level}` (`air`, `z500`, `t850`). The schema describes it;
model bundles carry the same schema so a model can refuse data it was not trained on.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from fno_forecast.data.grid import wrap_longitude


@dataclass(frozen=True)
class ChannelInfo:
    """One channel: a variable, optionally at one vertical level."""

    name: str
    variable: str
    level: float | None = None
    units: str = ""
    long_name: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChannelInfo:
        return cls(**data)


@dataclass(frozen=True)
class GridInfo:
    """A regular latitude/longitude grid. `lat` descending, `lon` ascending, both in degrees."""

    lat: tuple[float, ...]
    lon: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.lat) < 2 or len(self.lon) < 2:
            raise ValueError("GridInfo: lat and lon need at least 2 points each")

    @property
    def nlat(self) -> int:
        return len(self.lat)

    @property
    def nlon(self) -> int:
        return len(self.lon)

    @property
    def resolution_deg(self) -> float:
        return float(abs(self.lon[1] - self.lon[0]))

    @property
    def is_global(self) -> bool:
        """True when longitudes wrap around the globe (the last step closes the circle)."""
        span = (self.lon[-1] - self.lon[0]) + self.resolution_deg
        return bool(abs(span - 360.0) < 1e-3 * self.resolution_deg + 1e-6)

    def contains(self, lat: float, lon: float) -> bool:
        """Whether a point lies inside the grid's domain (longitude in any convention)."""
        lat_ok = min(self.lat) <= lat <= max(self.lat)
        if self.is_global:
            return lat_ok
        return lat_ok and wrap_longitude(lon, start=self.lon[0]) <= self.lon[-1] + 1e-9

    def to_dict(self) -> dict[str, Any]:
        return {"lat": list(self.lat), "lon": list(self.lon)}

    @classmethod
    def from_arrays(cls, lat: np.ndarray, lon: np.ndarray) -> GridInfo:
        return cls(tuple(float(v) for v in lat), tuple(float(v) for v in lon))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GridInfo:
        return cls(tuple(float(v) for v in data["lat"]), tuple(float(v) for v in data["lon"]))

    def summary(self) -> dict[str, Any]:
        """The `grid` block of `inspect --json`."""
        return {
            "nlat": self.nlat,
            "nlon": self.nlon,
            "lat_min": min(self.lat),
            "lat_max": max(self.lat),
            "lon_min": min(self.lon),
            "lon_max": max(self.lon),
            "resolution_deg": self.resolution_deg,
            "global": self.is_global,
        }


@dataclass(frozen=True)
class DataSchema:
    """Channels, grid and time step of a canonical array."""

    channels: tuple[ChannelInfo, ...]
    grid: GridInfo
    step_hours: float
    member: int | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def channel_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.channels)

    def to_dict(self) -> dict[str, Any]:
        return {
            "channels": [c.to_dict() for c in self.channels],
            "grid": self.grid.to_dict(),
            "step_hours": self.step_hours,
            "member": self.member,
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DataSchema:
        return cls(
            channels=tuple(ChannelInfo.from_dict(c) for c in data["channels"]),
            grid=GridInfo.from_dict(data["grid"]),
            step_hours=float(data["step_hours"]),
            member=data.get("member"),
            notes=tuple(data.get("notes", ())),
        )
