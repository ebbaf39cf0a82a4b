"""The service's bridge to the library: run `fno_forecast.forecast.forecast` and read its output.

A rollout's dataset (fresh from `forecast`, or read back from the store) becomes a `RolloutData`: one
float32 array `(lead, channel, lat, lon)` plus its axes, which the point, map and stream routes slice
without touching xarray on the request path.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import xarray as xr

from fno_forecast.data.schema import DataSchema
from fno_forecast.errors import ForecastError
from service.store import RunKey

LEAD_NAMES = ("lead_time", "lead", "step")
INIT_NAMES = ("init_time", "time", "reference_time", "forecast_reference_time")


OnLead = Callable[[float, "np.ndarray | None"], None]


class ForecastFunction(Protocol):
    """Roll a bundle out from one init time to `lead_hours`, reporting each lead as it is produced.

    `on_lead(lead_hours, fields)` gets the lead's fields `(channel, lat, lon)` in the bundle's channel
    order (or None when they are not available). Returns the library's CF forecast dataset.
    """

    def __call__(
        self, bundle: Any, initial_state: xr.Dataset, lead_hours: float, *, init_times: str, on_lead: OnLead
    ) -> xr.Dataset: ...


def library_forecast(
    bundle: Any, initial_state: xr.Dataset, lead_hours: float, *, init_times: str, on_lead: OnLead
) -> xr.Dataset:
    """The library's forecast, lead by lead: `forecast_steps` then `finish_forecast`, as `forecast()` does.

    The service needs each lead's fields while the rollout runs (for the NDJSON stream), which
    `forecast(on_step=...)` does not pass on; this composes the same library functions instead.
    """
    from fno_forecast import __version__
    from fno_forecast.forecast import forecast_steps
    from fno_forecast.forecast_dataset import finish_forecast

    pieces = []
    for lead, piece in forecast_steps(bundle, initial_state, lead_hours, init_times=init_times):
        pieces.append(piece)
        on_lead(float(lead), channel_fields(piece, bundle.schema))
    return finish_forecast(pieces, bundle=bundle, initial_state=initial_state, version=__version__)


def channel_fields(piece: xr.Dataset, schema: DataSchema) -> np.ndarray:
    """One lead's dataset `([level,] lat, lon)` per variable -> `(channel, lat, lon)` float32."""
    return np.stack(
        [np.asarray(_channel_array(piece, c).values, dtype=np.float32) for c in schema.channels], axis=0
    )


@dataclass(frozen=True)
class RolloutData:
    """A computed rollout ready to slice: `values (lead, channel, lat, lon)` float32, lat descending."""

    key: RunKey
    init_time: np.datetime64
    lead_hours: np.ndarray
    channels: tuple[str, ...]
    units: tuple[str, ...]
    lat: np.ndarray
    lon: np.ndarray
    values: np.ndarray
    computed_at: float
    seconds: float
    path: Path | None = None

    @property
    def valid_times(self) -> np.ndarray:
        offsets = (self.lead_hours * 3600.0).round().astype("timedelta64[s]")
        return (self.init_time.astype("datetime64[s]") + offsets).astype("datetime64[s]")

    def channel_index(self, name: str) -> int:
        return self.channels.index(name)


def _lead_to_hours(values: np.ndarray) -> np.ndarray:
    if np.issubdtype(values.dtype, np.timedelta64):
        return values.astype("timedelta64[s]").astype(np.float64) / 3600.0
    return np.asarray(values, dtype=np.float64)


def _channel_array(dataset: xr.Dataset, channel: Any) -> xr.DataArray:
    """The array of one channel: its variable, at its level when it has one (`z500` is `z` at 500)."""
    if channel.variable in dataset.data_vars:
        array = dataset[channel.variable]
        if channel.level is not None and "level" in array.dims:
            array = array.sel(level=channel.level, method="nearest")
        return array
    if channel.name in dataset.data_vars:
        return dataset[channel.name]
    have = sorted(map(str, dataset.data_vars))
    raise ForecastError(
        f"forecast output has no variable {channel.variable!r} for channel {channel.name!r} ({have})"
    )


def to_rollout_data(
    dataset: xr.Dataset,
    *,
    key: RunKey,
    schema: DataSchema,
    computed_at: float,
    seconds: float,
    path: Path | None = None,
) -> RolloutData:
    """Read the library's forecast dataset into a `RolloutData` for one init time."""
    lead_name = next((n for n in LEAD_NAMES if n in dataset.dims), None)
    if lead_name is None:
        raise ForecastError(f"forecast output has no lead dimension (dims {dict(dataset.sizes)})")
    arrays, units = [], []
    init_time: np.datetime64 | None = None
    for channel in schema.channels:
        array = _channel_array(dataset, channel)
        for dim in array.dims:
            if dim not in (lead_name, "lat", "lon"):
                if array.sizes[dim] != 1:
                    raise ForecastError(f"forecast output: expected one {dim!r}, got {array.sizes[dim]}")
                if init_time is None and dim in INIT_NAMES and dim in array.coords:
                    init_time = np.datetime64(array[dim].values[0], "s")
                array = array.isel({dim: 0})
        arrays.append(np.asarray(array.transpose(lead_name, "lat", "lon").values, dtype=np.float32))
        units.append(str(array.attrs.get("units") or channel.units))
    if init_time is None:
        for name in INIT_NAMES:
            if name in dataset.coords and dataset[name].size == 1:
                init_time = np.datetime64(np.asarray(dataset[name].values).reshape(-1)[0], "s")
                break
    if init_time is None:
        init_time = np.datetime64(key.run.replace("Z", ""), "s")
    return RolloutData(
        key=key,
        init_time=init_time,
        lead_hours=_lead_to_hours(dataset[lead_name].values),
        channels=schema.channel_names,
        units=tuple(units),
        lat=np.asarray(dataset["lat"].values, dtype=np.float64),
        lon=np.asarray(dataset["lon"].values, dtype=np.float64),
        values=np.stack(arrays, axis=1),
        computed_at=computed_at,
        seconds=seconds,
        path=path,
    )


def run_rollout(
    forecast_fn: ForecastFunction,
    *,
    bundle: Any,
    initial_state: xr.Dataset,
    run: str,
    hours: int,
    on_lead: OnLead,
) -> tuple[xr.Dataset, float]:
    """Roll `bundle` out from `run` for `hours`; returns the forecast dataset and the seconds it took."""
    start = time.perf_counter()
    dataset = forecast_fn(bundle, initial_state, float(hours), init_times=run, on_lead=on_lead)
    return dataset, time.perf_counter() - start
