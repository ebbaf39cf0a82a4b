"""The service's bridge to the library: run `fno_forecast.forecast.forecast` and keep its canonical fields.

A rollout becomes a `RolloutData`: one float32 array `(lead, channel, lat, lon)` plus its axes, which the
point, map and stream routes slice without touching xarray on the request path. A fresh rollout's values
are the library's canonical fields as it produced them (`forecast(on_fields=...)`); its CF dataset is
what the store writes, and what a restarted service reads back (`read_rollout`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import xarray as xr

from fno_forecast.data.schema import DataSchema
from fno_forecast.errors import ForecastError
from service.runs import run_time, valid_times
from service.store import RunKey

LEAD_NAMES = ("lead_time", "lead", "step")
INIT_NAMES = ("init_time", "time", "reference_time", "forecast_reference_time")


OnLead = Callable[[float, np.ndarray], None]


class ForecastFunction(Protocol):
    """Roll a bundle out from one init time to `lead_hours`, reporting each lead as it is produced.

    `on_lead(lead_hours, fields)` gets the lead's canonical fields `(channel, lat, lon)` float32 in the
    bundle's channel order. Returns the library's CF forecast dataset.
    """

    def __call__(
        self, bundle: Any, initial_state: xr.Dataset, lead_hours: float, *, init_times: str, on_lead: OnLead
    ) -> xr.Dataset: ...


def library_forecast(
    bundle: Any, initial_state: xr.Dataset, lead_hours: float, *, init_times: str, on_lead: OnLead
) -> xr.Dataset:
    """`fno_forecast.forecast.forecast` from one init time, passing each lead's fields to `on_lead`."""
    from fno_forecast.forecast import forecast

    def one_init(lead: float, fields: np.ndarray) -> None:
        on_lead(float(lead), fields[0])

    return forecast(bundle, initial_state, lead_hours, init_times=init_times, on_fields=one_init)


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
        return valid_times(self.init_time, self.lead_hours)

    def channel_index(self, name: str) -> int:
        return self.channels.index(name)

    def leading(self, key: RunKey) -> RolloutData:
        """The first `key.hours` of this (longer) rollout of the same run, answering for `key`. Its stored
        file holds the longer rollout, so it names none (`path` is for downloads of exactly this key)."""
        keep = int(np.searchsorted(self.lead_hours, key.hours + 1e-6))
        return replace(self, key=key, lead_hours=self.lead_hours[:keep], values=self.values[:keep], path=None)


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


def _init_time(dataset: xr.Dataset, key: RunKey) -> np.datetime64:
    """The dataset's single init time (a scalar or length-1 coordinate), else the run it was asked for."""
    for name in INIT_NAMES:
        if name in dataset.coords and dataset[name].size == 1:
            return np.datetime64(np.asarray(dataset[name].values).reshape(-1)[0], "s")
    return run_time(key.run).astype("datetime64[s]")


def rollout_data(
    dataset: xr.Dataset,
    *,
    key: RunKey,
    schema: DataSchema,
    lead_hours: np.ndarray,
    values: np.ndarray,
    computed_at: float,
    seconds: float,
    path: Path | None = None,
) -> RolloutData:
    """Canonical `values (lead, channel, lat, lon)` with the init time, units and grid of their CF dataset."""
    units = []
    for channel in schema.channels:
        units.append(str(_channel_array(dataset, channel).attrs.get("units") or channel.units))
    return RolloutData(
        key=key,
        init_time=_init_time(dataset, key),
        lead_hours=np.asarray(lead_hours, dtype=np.float64),
        channels=schema.channel_names,
        units=tuple(units),
        lat=np.asarray(dataset["lat"].values, dtype=np.float64),
        lon=np.asarray(dataset["lon"].values, dtype=np.float64),
        values=np.asarray(values, dtype=np.float32),
        computed_at=computed_at,
        seconds=seconds,
        path=path,
    )


def read_rollout(
    dataset: xr.Dataset,
    *,
    key: RunKey,
    schema: DataSchema,
    computed_at: float,
    seconds: float,
    path: Path | None = None,
) -> RolloutData:
    """A stored rollout: the library's CF forecast dataset for one init time, back to canonical values."""
    lead_name = next((n for n in LEAD_NAMES if n in dataset.dims), None)
    if lead_name is None:
        raise ForecastError(f"forecast output has no lead dimension (dims {dict(dataset.sizes)})")
    arrays = []
    for channel in schema.channels:
        array = _channel_array(dataset, channel)
        for dim in array.dims:
            if dim not in (lead_name, "lat", "lon"):
                if array.sizes[dim] != 1:
                    raise ForecastError(f"forecast output: expected one {dim!r}, got {array.sizes[dim]}")
                array = array.isel({dim: 0})
        arrays.append(np.asarray(array.transpose(lead_name, "lat", "lon").values, dtype=np.float32))
    return rollout_data(
        dataset,
        key=key,
        schema=schema,
        lead_hours=_lead_to_hours(dataset[lead_name].values),
        values=np.stack(arrays, axis=1),
        computed_at=computed_at,
        seconds=seconds,
        path=path,
    )


@dataclass(frozen=True)
class ComputedRollout:
    """What a forecast function returned (`dataset`) and the canonical fields it reported on the way."""

    dataset: xr.Dataset
    lead_hours: np.ndarray
    values: np.ndarray
    seconds: float


def compute_rollout(
    forecast_fn: ForecastFunction,
    *,
    bundle: Any,
    initial_state: xr.Dataset,
    run: str,
    hours: int,
    on_lead: OnLead,
) -> ComputedRollout:
    """Roll `bundle` out from `run` for `hours`, passing each lead on to `on_lead` as it is produced."""
    leads: list[float] = []
    fields: list[np.ndarray] = []

    def keep(lead: float, lead_fields: np.ndarray) -> None:
        leads.append(lead)
        fields.append(lead_fields)
        on_lead(lead, lead_fields)

    start = time.perf_counter()
    dataset = forecast_fn(bundle, initial_state, float(hours), init_times=run, on_lead=keep)
    seconds = time.perf_counter() - start
    if not fields:
        raise ForecastError(f"the forecast from {run} reported no lead times")
    return ComputedRollout(dataset, np.asarray(leads), np.stack(fields, axis=0), seconds)
