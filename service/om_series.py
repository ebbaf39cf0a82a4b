"""The numbers of a /v1/forecast answer: per location, hourly, daily and current values in the asked units.

A location's native series is the model's analyses up to the run (the initial states) followed by the
rollout's steps; hourly values are interpolated from it (`service.om_time`), Open-Meteo quantities are
computed from the channels (`service.om_variables`), and days are aggregated from the 24 local hours
(min, max, mean, sum; the dominant direction is the direction of the day's summed wind vector).
A day with a missing hour, and any variable the model lacks, is null.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import xarray as xr

from service.catalog import ModelEntry
from service.engine import RolloutData
from service.om_names import OmName, parse_hourly
from service.om_request import Daily, ForecastRequest, Location, Variable
from service.om_time import hourly_axis, interpolate, local_days
from service.om_variables import converter, quantity
from service.points import PointWeights
from service.store import NETCDF_LOCK


@dataclass(frozen=True)
class Series:
    """One answered variable: the key the client sent, its unit label and values (NaN = null)."""

    key: str
    unit: str
    values: np.ndarray
    name: OmName | None = None
    aggregation: str | None = None


@dataclass(frozen=True)
class Analysis:
    """The model's own states before and at the run: `values (time, channel, lat, lon)`."""

    times: np.ndarray
    values: np.ndarray


@dataclass(frozen=True)
class LocationAnswer:
    location: Location
    weights: PointWeights
    hourly_times: np.ndarray  # UTC datetime64[s]
    hourly: tuple[Series, ...]
    daily_times: np.ndarray  # UTC datetime64[s] of local midnights
    daily: tuple[Series, ...]
    current_time: np.datetime64
    current: tuple[Series, ...]
    current_weather: dict | None


def answer_span(request: ForecastRequest) -> tuple[np.datetime64, np.datetime64]:
    """The first and last UTC hour any location's answer covers (daily needs whole local days)."""
    run = np.datetime64(request.run, "s")
    firsts, lasts = [run], [run]
    for location in request.locations:
        hours = hourly_axis(request.window, run, location.local.utc_offset_seconds)
        if len(hours):
            firsts.append(hours[0])
            lasts.append(hours[-1])
    return min(firsts), max(lasts)


def rollout_hours(entry: ModelEntry, request: ForecastRequest) -> int:
    """Hours of rollout the answer needs (0: analyses only), in whole steps up to the model's maximum."""
    _, last = answer_span(request)
    needed = (last - np.datetime64(request.run, "s")).astype(np.int64) / 3600.0
    if needed <= 0:
        return 0
    step = entry.step_hours
    return int(math.ceil(min(needed, entry.max_hours) / step) * step)


def read_analysis(entry: ModelEntry, request: ForecastRequest) -> Analysis:
    """The initial states from one step before the answer's first hour up to the run, on the model grid."""
    from fno_forecast.forecast import _canonical  # the library's one reading of initial states

    first, _ = answer_span(request)
    start = first - np.timedelta64(int(round(entry.step_hours * 3600)), "s")
    run = np.datetime64(request.run, "ns")
    with NETCDF_LOCK:
        window = entry.initial_states.sel(time=slice(start.astype("datetime64[ns]"), run)).load()
    if window.sizes.get("time", 0) == 0:
        return Analysis(np.array([], dtype="datetime64[s]"), np.zeros((0, len(entry.schema.channels), 1, 1)))
    array: xr.DataArray = _canonical(entry.bundle, window)
    return Analysis(
        np.asarray(array["time"].values).astype("datetime64[s]"), np.asarray(array.values, np.float64)
    )


def native_series(
    analysis: Analysis, data: RolloutData | None, weights: PointWeights
) -> tuple[np.ndarray, np.ndarray]:
    """`(times, values (time, channel))` at one location: analyses, then the rollout's steps."""
    times, values = [analysis.times], [weights.apply(analysis.values)] if len(analysis.times) else []
    if data is not None:
        times.append(data.valid_times)
        values.append(weights.apply(data.values.astype(np.float64)))
    if not values:
        return np.array([], dtype="datetime64[s]"), np.zeros((0, analysis.values.shape[1]))
    all_times = np.concatenate(times)
    order = np.argsort(all_times, kind="stable")
    return all_times[order], np.concatenate(values)[order]


def _hourly_series(
    entry: ModelEntry, variable: Variable, channels: np.ndarray, request: ForecastRequest
) -> Series:
    """`channels (time, channel)` -> the requested variable's values."""
    if variable.channel is not None:
        return Series(
            variable.key, entry.schema.channels[variable.channel].units, channels[..., variable.channel]
        )
    assert variable.name is not None
    unit, convert = converter(variable.name, request.units)
    values = quantity(entry.schema, variable.name).base_values(channels)
    return Series(variable.key, unit, convert(values), name=variable.name)


def _day_blocks(values: np.ndarray, days: np.ndarray, distinct: np.ndarray) -> list[np.ndarray]:
    return [values[days == d] for d in distinct]


def _aggregate(block: np.ndarray, how: str) -> float:
    if len(block) < 24 or np.isnan(block).any():
        return math.nan
    return float({"max": np.max, "min": np.min, "mean": np.mean, "sum": np.sum}[how](block))


def _daily_series(
    entry: ModelEntry,
    daily: Daily,
    channels: np.ndarray,
    days: np.ndarray,
    distinct: np.ndarray,
    request: ForecastRequest,
) -> Series:
    name, how = daily.name.hourly, daily.name.aggregation
    unit, convert = converter(name, request.units)
    if how is None:  # weather_code, sunrise, ...: not computed from this model's channels
        return Series(daily.key, unit, np.full(len(distinct), np.nan), name=name)
    if how == "dominant":
        spec = quantity(entry.schema, name)
        if spec.kind != "direction":
            return Series(daily.key, "°", np.full(len(distinct), np.nan), name=name, aggregation=how)
        u, v = spec.sources[0].read(channels), spec.sources[1].read(channels)
        out = []
        for bu, bv in zip(_day_blocks(u, days, distinct), _day_blocks(v, days, distinct), strict=True):
            total_u, total_v = _aggregate(bu, "sum"), _aggregate(bv, "sum")
            out.append(float(np.mod(np.degrees(np.arctan2(-total_u, -total_v)), 360.0)))
        return Series(daily.key, "°", np.asarray(out), name=name, aggregation=how)
    base = quantity(entry.schema, name).base_values(channels)
    values = np.asarray([_aggregate(b, how) for b in _day_blocks(base, days, distinct)])
    return Series(daily.key, unit, convert(values), name=name, aggregation=how)


def _current_weather(entry: ModelEntry, channels: np.ndarray, request: ForecastRequest) -> dict:
    """Open-Meteo's legacy block: temperature_2m, wind at 10 m and weather code at the run (null if absent)."""
    fields = {
        "temperature": "temperature_2m",
        "windspeed": "wind_speed_10m",
        "winddirection": "wind_direction_10m",
    }
    out: dict = {}
    for key, name in fields.items():
        series = _hourly_series(entry, Variable(name, name=parse_hourly(name)), channels, request)
        out[key] = float(series.values[0])
    out["weathercode"] = math.nan
    return out


def answer_location(
    request: ForecastRequest,
    location: Location,
    weights: PointWeights,
    analysis: Analysis,
    data: RolloutData | None,
) -> LocationAnswer:
    entry = request.entry
    run = np.datetime64(request.run, "s")
    offset = location.local.utc_offset_seconds
    times, values = native_series(analysis, data, weights)
    hours = hourly_axis(request.window, run, offset)
    hourly_channels = interpolate(times, values, hours)
    hourly = tuple(_hourly_series(entry, v, hourly_channels, request) for v in request.hourly)
    daily: tuple[Series, ...] = ()
    midnights = np.array([], dtype="datetime64[s]")
    if request.daily:
        days, distinct = local_days(hours, offset)
        midnights = distinct.astype("datetime64[s]") - np.timedelta64(offset, "s")
        daily = tuple(
            _daily_series(entry, d, hourly_channels, days, distinct, request) for d in request.daily
        )
    now_channels = interpolate(times, values, np.array([run]))
    current = tuple(_hourly_series(entry, v, now_channels, request) for v in request.current)
    weather = _current_weather(entry, now_channels, request) if request.current_weather else None
    return LocationAnswer(location, weights, hours, hourly, midnights, daily, run, current, weather)
