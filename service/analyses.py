"""The analyses the service forecasts from and verifies against, checked against every model first.

An analysis source (a file, or a dataset a replay hands in) goes through the library's data layer
(`fno_forecast.data.channels`) into a canonical `(time, channel, lat, lon)` array, then `check_analysis`
holds it against each model's schema: channels present, grid, units, time step, whole steps from the
analyses already held, finite values. A refused source raises `AnalysisRejected` naming it by file name,
never by a host path, and changes nothing. `AnalysisSet` keeps the accepted times (the first source to bring
a time wins, so nothing already served changes) and hands the models their initial states as a dataset
the library's `forecast` reads (`as_source`), and the analysis at a valid time for verification.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from fno_forecast.data.channels import Channels, open_channels, to_channels
from fno_forecast.data.schema import ChannelInfo, DataSchema
from fno_forecast.data.timeaxis import format_time, times_to_hours
from fno_forecast.errors import BundleError, DataError


class AnalysisRejected(ValueError):
    """A source the service will not use; the message names it (by file name) and the problem."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"analysis {name}: {problem}")
        self.name = name
        self.problem = problem


def _without(text: str, *paths: object) -> str:
    """`text` with host paths the library put in it replaced by nothing (their messages lead with them)."""
    for path in paths:
        if path:
            text = text.replace(f"{path}: ", "").replace(str(path), Path(str(path)).name)
    return text


def open_analysis(source: Path | xr.Dataset, *, name: str) -> Channels:
    """A file (NetCDF, GRIB, Zarr) or an opened dataset as canonical channels; `AnalysisRejected` when the
    data layer cannot read it."""
    try:
        if isinstance(source, xr.Dataset):
            return to_channels(source, require_regular=False)
        return open_channels([source], require_regular=False)
    except DataError as error:
        raise AnalysisRejected(name, _without(error.reason, source)) from None
    except (OSError, ValueError, KeyError) as error:  # what the file readers raise on a malformed file
        raise AnalysisRejected(
            name, f"cannot be read ({type(error).__name__}: {_without(str(error), source)})"
        ) from None


# Spellings of one unit that CF files use interchangeably (NCEP writes `degK`); no units library is a
# dependency of the project, and equality up to these is all the check needs.
UNIT_ALIASES = {
    "degk": "k",
    "deg_k": "k",
    "kelvin": "k",
    "kelvins": "k",
    "metre": "m",
    "meter": "m",
    "meters": "m",
}


def _units(text: str) -> str:
    key = text.strip().replace(" ", "").lower()
    return UNIT_ALIASES.get(key, key)


def check_analysis(
    channels: Channels, *, name: str, bundles: Sequence[Any], reference: np.datetime64 | None
) -> tuple[xr.DataArray, tuple[ChannelInfo, ...]]:
    """The analysis restricted to the channels every model needs (the first model's order, then the others')
    and those channels, or `AnalysisRejected` naming the first problem. `reference` is a time already held (steps count from it).
    """
    from fno_forecast.bundle import check_compatible

    have = {c.name: c for c in channels.schema.channels}
    wanted: dict[str, ChannelInfo] = {}
    for bundle in bundles:
        schema = bundle.schema
        missing = [c for c in schema.channel_names if c not in have]
        if missing:
            raise AnalysisRejected(name, f"has no channel(s) {missing} (it has {sorted(have)})")
        for channel in schema.channels:
            units = have[channel.name].units
            if channel.units and units and _units(units) != _units(channel.units):
                raise AnalysisRejected(
                    name, f"channel {channel.name} is in {units!r}; the model needs {channel.units!r}"
                )
            wanted.setdefault(channel.name, have[channel.name])
        step = channels.schema.step_hours if channels.time.steps > 1 else schema.step_hours
        subset = DataSchema(
            channels=tuple(have[c] for c in schema.channel_names), grid=channels.schema.grid, step_hours=step
        )
        try:
            check_compatible(bundle, subset)
        except BundleError as error:
            raise AnalysisRejected(name, _without(str(error), bundle.path)) from None
        _check_steps(
            channels.array["time"].values, name=name, step_hours=schema.step_hours, reference=reference
        )
    array = channels.array.sel(channel=list(wanted))
    _check_finite(array, name=name)
    return array, tuple(wanted.values())


def _check_steps(times: np.ndarray, *, name: str, step_hours: float, reference: np.datetime64 | None) -> None:
    hours = times_to_hours(times)
    base = hours[0] if reference is None else times_to_hours(np.asarray([reference]))[0]
    off = np.abs((hours - base) / step_hours - np.round((hours - base) / step_hours))
    if (off > 1e-6).any():
        bad = times[int(np.argmax(off > 1e-6))]
        raise AnalysisRejected(
            name,
            f"time {format_time(bad)} is not a whole number of {step_hours:g}-hour steps from the others",
        )


def _check_finite(array: xr.DataArray, *, name: str) -> None:
    """NaN or Inf anywhere is refused, naming the first time and channel (read one time step at a time)."""
    for index in range(array.sizes["time"]):
        values = np.asarray(array.isel(time=index).values)
        if not np.isfinite(values).all():
            channel = array["channel"].values[int(np.argwhere(~np.isfinite(values))[0][0])]
            when = format_time(array["time"].values[index])
            raise AnalysisRejected(name, f"NaN or Inf values at {when} in channel {channel}")


def as_source(array: xr.DataArray, infos: Sequence[ChannelInfo]) -> xr.Dataset:
    """A canonical array back as the dataset `fno_forecast.forecast.forecast` reads: one variable per
    channel variable, with a `level` dimension (hPa) where its channels have levels."""
    variables: dict[str, xr.DataArray] = {}
    for variable in dict.fromkeys(c.variable for c in infos):
        mine = [c for c in infos if c.variable == variable]
        first = mine[0]
        attrs = {"units": first.units, "long_name": first.long_name}
        if first.level is None:
            variables[variable] = array.sel(channel=first.name, drop=True).assign_attrs(attrs)
            continue
        pieces = array.sel(channel=[c.name for c in mine]).rename(channel="level")
        pieces = pieces.assign_coords(level=[float(c.level or 0.0) for c in mine])
        variables[variable] = pieces.transpose("time", "level", "lat", "lon").assign_attrs(attrs)
    dataset = xr.Dataset(variables)
    if "level" in dataset.coords:
        dataset["level"].attrs["units"] = "hPa"
    return dataset


class AnalysisSet:
    """The accepted analyses: one canonical array, time ascending, and the names of their sources."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.array: xr.DataArray | None = None
        self.infos: tuple[ChannelInfo, ...] = ()
        self.sources: list[str] = []

    @property
    def times(self) -> np.ndarray:
        array = self.array
        return np.asarray([], dtype="datetime64[ns]") if array is None else np.asarray(array["time"].values)

    @property
    def reference(self) -> np.datetime64 | None:
        times = self.times
        return times[0] if len(times) else None

    def add(self, array: xr.DataArray, infos: tuple[ChannelInfo, ...], *, name: str) -> np.ndarray:
        """Add the times of `array` not held yet; returns them (ascending; empty when all were held)."""
        with self._lock:
            times = np.asarray(array["time"].values).astype("datetime64[ns]")
            fresh = ~np.isin(times, self.times)
            if not fresh.any():
                return times[:0]
            new = array.isel(time=np.flatnonzero(fresh))
            if self.array is None:
                self.infos = infos
                combined = new
            else:
                combined = xr.concat([self.array, new.sel(channel=self.array["channel"].values)], dim="time")
            self.array = combined.sortby("time")
            self.sources.append(name)
            return np.sort(times[fresh])

    def dataset(self) -> xr.Dataset:
        """The initial states for the models (an empty dataset before any analysis arrived)."""
        if self.array is None:
            return xr.Dataset(coords={"time": np.asarray([], dtype="datetime64[ns]")})
        return as_source(self.array, self.infos)

    def state(self, when: np.datetime64, channels: Sequence[str]) -> np.ndarray | None:
        """The analysis at `when` as `(channel, lat, lon)` float32 in `channels`' order, None when absent."""
        array = self.array
        if array is None or not np.isin(np.datetime64(when, "ns"), self.times):
            return None
        return np.asarray(array.sel(time=when, channel=list(channels)).values, dtype=np.float32)
