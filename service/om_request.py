"""A /v1/forecast query parsed into a `ForecastRequest`: validated, canonical, and the response cache's key.

Everything that decides the answer's bytes is in the request, and nothing else is, so that parameters
that do not change the answer (unknown ones, a repeated value, `models=best_match` for the default model)
share one cache entry.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field

import numpy as np

from service.catalog import Catalog, ModelEntry
from service.om_names import DailyName, OmName, parse_daily, parse_hourly
from service.om_params import QueryParams, choice, flag, integer, numbers, om_error
from service.om_time import LocalTime, Window, local_time, resolve_timezone
from service.om_variables import PRECIPITATION_UNITS, TEMPERATURE_UNITS, WIND_UNITS, Units
from service.problems import ApiError
from service.query import resolve_run

CELLS = ("bilinear", "nearest", "land", "sea")
FORMATS = ("json", "csv", "flatbuffers")
MAX_DAYS = 92 + 16  # the longest answer past_days and forecast_days can ask for
# Open-Meteo parameters that would change the answer in ways this server does not offer: refused, not ignored.
UNSUPPORTED = (
    "minutely_15", "forecast_minutely_15", "past_minutely_15", "start_minutely_15", "end_minutely_15",
    "start_hour", "end_hour", "initial_hours", "temporal_resolution",
)  # fmt: skip


@dataclass(frozen=True)
class Variable:
    """One requested hourly/current variable: the name as sent, and an Open-Meteo quantity or a channel."""

    key: str
    name: OmName | None = None
    channel: int | None = None


@dataclass(frozen=True)
class Daily:
    key: str
    name: DailyName


@dataclass(frozen=True)
class Location:
    latitude: float
    longitude: float
    elevation: float | None
    local: LocalTime


@dataclass(frozen=True)
class ForecastRequest:
    entry: ModelEntry = field(compare=False, repr=False)
    model_id: str
    run: str
    locations: tuple[Location, ...]
    hourly: tuple[Variable, ...]
    daily: tuple[Daily, ...]
    current: tuple[Variable, ...]
    current_weather: bool
    units: Units
    window: Window
    timeformat: str
    cell_selection: str
    format: str

    def cache_key(self) -> str:
        """What determines the answer, as a short digest: the model's sha256 and the parsed request.

        A digest, not the request itself, so that a key costs 64 bytes however many locations it has.
        """
        fields = (getattr(self, f) for f in self.__dataclass_fields__ if f != "entry")
        return "point:" + hashlib.sha256(repr((self.entry.sha256, *fields)).encode()).hexdigest()


def _variables(entry: ModelEntry, params: QueryParams, parameter: str) -> tuple[Variable, ...]:
    channels = entry.schema.channel_names
    out = []
    for key in dict.fromkeys(params.items(parameter)):
        name = parse_hourly(key)
        if name is not None:
            out.append(Variable(key, name=name))
        elif key in channels:
            out.append(Variable(key, channel=channels.index(key)))
        else:
            raise om_error(parameter, f"unknown variable {key!r}: not an Open-Meteo variable nor a channel of "
                           f"model {entry.id!r} ({list(channels)})")  # fmt: skip
    return tuple(out)


def _daily(params: QueryParams) -> tuple[Daily, ...]:
    out = []
    for key in dict.fromkeys(params.items("daily")):
        name = parse_daily(key)
        if name is None:
            raise om_error("daily", f"unknown daily variable {key!r}")
        out.append(Daily(key, name))
    return tuple(out)


def _date(params: QueryParams, name: str) -> np.datetime64 | None:
    text = params.text(name)
    if text is None:
        return None
    try:
        return np.datetime64(text, "D")
    except ValueError:
        raise om_error(name, f"{text!r} is not a date (YYYY-MM-DD)") from None


def _window(params: QueryParams) -> Window:
    start, end = _date(params, "start_date"), _date(params, "end_date")
    if (start is None) != (end is None):
        raise om_error("end_date" if end is None else "start_date", "start_date and end_date go together")
    if start is not None and end is not None:
        if end < start:
            raise om_error("end_date", f"{end} is before start_date {start}")
        if int((end - start).astype(int)) + 1 > MAX_DAYS:
            raise om_error("end_date", f"at most {MAX_DAYS} days from start_date (past_days + forecast_days)")
        for name in ("forecast_days", "past_days", "forecast_hours", "past_hours"):
            if params.text(name) is not None:
                raise om_error(name, "cannot be combined with start_date and end_date")
        return Window(start_date=start, end_date=end)
    forecast_hours = integer(params, "forecast_hours", low=0, high=16 * 24, default=None)
    if forecast_hours is not None and params.text("forecast_days") is not None:
        raise om_error("forecast_days", "give forecast_hours or forecast_days, not both")
    return Window(
        past_days=integer(params, "past_days", low=0, high=92, default=0) or 0,
        forecast_days=integer(params, "forecast_days", low=0, high=16, default=7) or 0,
        forecast_hours=forecast_hours,
        past_hours=integer(params, "past_hours", low=0, high=92 * 24, default=None),
    )


def _model(catalog: Catalog, params: QueryParams) -> ModelEntry:
    wanted = params.items("models")
    if len(wanted) > 1:
        raise om_error("models", f"one model per request; got {wanted}")
    name = wanted[0] if wanted else None
    entry = catalog.get(None if name in (None, "best_match") else name)
    if entry is None:
        if not catalog.entries:
            raise ApiError(503, "no model is loaded")
        raise om_error(
            "models", f"unknown model {name!r}; available: best_match, {', '.join(sorted(catalog.entries))}"
        )
    return entry


def _locations(params: QueryParams, entry: ModelEntry, run: str, *, limit: int) -> tuple[Location, ...]:
    lats = numbers(params, "latitude", low=-90.0, high=90.0)
    lons = numbers(params, "longitude", low=-180.0, high=180.0)
    if not lats or not lons:
        raise om_error("latitude" if not lats else "longitude", "is required")
    if len(lats) != len(lons):
        raise om_error("longitude", "latitude and longitude must have the same number of elements")
    if len(lats) > limit:
        raise om_error("latitude", f"{len(lats)} locations; at most {limit} per request")
    elevations: list[float | None] = list(
        numbers(params, "elevation", low=-1000.0, high=9000.0, allow_nan=True)
    )
    if elevations and len(elevations) != len(lats):
        raise om_error("elevation", "needs one value per location")
    elevations = [None if e is None or math.isnan(e) else e for e in elevations] or [None] * len(lats)
    zones = params.items("timezone") or ["GMT"]
    if len(zones) not in (1, len(lats)):
        raise om_error("timezone", "one timezone, or one per location")
    at = np.datetime64(run, "s")
    out = []
    for k, (lat, lon, elevation) in enumerate(zip(lats, lons, elevations, strict=True)):
        zone = resolve_timezone(zones[k if len(zones) > 1 else 0], lat, lon)
        out.append(Location(lat, lon, elevation, local_time(zone, at)))
    return tuple(out)


def parse_request(params: QueryParams, catalog: Catalog, *, max_locations: int) -> ForecastRequest:
    """The validated request, or an ApiError (400 naming the parameter) at the first bad one."""
    for name in UNSUPPORTED:
        if params.text(name) is not None:
            raise om_error(name, "is not supported by this server (hourly, daily and current are)")
    entry = _model(catalog, params)
    run = resolve_run(entry, params.text("run"), error=om_error)
    return ForecastRequest(
        entry=entry,
        model_id=entry.id,
        run=run,
        locations=_locations(params, entry, run, limit=max_locations),
        hourly=_variables(entry, params, "hourly"),
        daily=_daily(params),
        current=_variables(entry, params, "current"),
        current_weather=flag(params, "current_weather"),
        units=Units(
            temperature=choice(params, "temperature_unit", TEMPERATURE_UNITS, "celsius"),
            wind_speed=choice(params, "wind_speed_unit", WIND_UNITS, "kmh", "windspeed_unit"),
            precipitation=choice(params, "precipitation_unit", PRECIPITATION_UNITS, "mm"),
        ),
        window=_window(params),
        timeformat=choice(params, "timeformat", ("iso8601", "unixtime"), "iso8601"),
        cell_selection=choice(params, "cell_selection", CELLS, "bilinear"),
        format=choice(params, "format", FORMATS, "json"),
    )
