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


class ForecastFunction(Protocol):
    def __call__(
        self,
        bundle: Any,
        initial_state: xr.Dataset,
        lead_hours: Any,
        *,
        init_times: Any = None,
        on_step: Callable[..., None] | None = None,
    ) -> xr.Dataset: ...


def library_forecast() -> ForecastFunction:
    """The library's `forecast` function (imported lazily: torch is heavy)."""
    from fno_forecast.forecast import forecast

    return forecast


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


def _channel_array(dataset: xr.Dataset, name: str) -> xr.DataArray:
    if name in dataset.data_vars:
        return dataset[name]
    for candidate in ("state", "forecast"):
        if candidate in dataset.data_vars and "channel" in dataset[candidate].dims:
            return dataset[candidate].sel(channel=name)
    raise ForecastError(
        f"forecast output has no variable {name!r} (has {sorted(map(str, dataset.data_vars))})"
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
        array = _channel_array(dataset, channel.name)
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
    run: np.datetime64,
    hours: int,
    on_step: Callable[[float, np.ndarray | None], None],
) -> tuple[xr.Dataset, float]:
    """Roll `bundle` out from `run` for `hours`; returns the forecast dataset and the seconds it took."""
    step = float(bundle.schema.step_hours)
    n_steps = int(np.ceil(hours / step))
    leads = [step * (i + 1) for i in range(n_steps)]

    def progress(*args: Any, **kwargs: Any) -> None:
        on_step(*_progress_args(args, kwargs, step))

    start = time.perf_counter()
    dataset = forecast_fn(bundle, initial_state, leads, init_times=[run], on_step=progress)
    return dataset, time.perf_counter() - start


def _progress_args(
    args: tuple[Any, ...], kwargs: dict[str, Any], step: float
) -> tuple[float, np.ndarray | None]:
    """Interpret the library's `on_step` call as `(lead_hours, fields (channel, lat, lon) or None)`."""
    values = list(args) + list(kwargs.values())
    lead: float | None = None
    fields: np.ndarray | None = None
    for value in values:
        if hasattr(value, "detach"):
            value = value.detach().cpu().numpy()
        if isinstance(value, np.ndarray) and value.ndim >= 3:
            fields = value.reshape(-1, *value.shape[-3:])[0].astype(np.float32)
        elif isinstance(value, int | float | np.integer | np.floating) and lead is None:
            lead = float(value)
    if lead is None:
        lead = step
    return lead, fields
