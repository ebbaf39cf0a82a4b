"""Rendering point forecasts: Open-Meteo's JSON shape (one object, or an array for several locations) or CSV."""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any

import numpy as np

from service.om_request import ForecastRequest
from service.om_series import LocationAnswer, Series
from service.om_time import format_times

DECIMALS = 2
# The bundles carry no surface height; answers say 0 m unless the request's `elevation` gives one.
NO_SURFACE_HEIGHT_M = 0.0


def elevation(answer: LocationAnswer) -> float:
    given = answer.location.elevation
    return NO_SURFACE_HEIGHT_M if given is None else float(given)


def _values(series: Series) -> list[float | None]:
    return [
        None if math.isnan(v) else round(v, DECIMALS) for v in np.asarray(series.values, np.float64).tolist()
    ]


def _block(
    series: tuple[Series, ...], times: list[Any], timeformat: str, extra_units: dict[str, str] | None = None
) -> tuple[dict, dict]:
    units = {"time": timeformat, **(extra_units or {}), **{s.key: s.unit for s in series}}
    return units, {"time": times, **{s.key: _values(s) for s in series}}


def location_json(
    request: ForecastRequest, answer: LocationAnswer, *, generation_ms: float
) -> dict[str, Any]:
    local, fmt = answer.location.local, request.timeformat
    offset = local.utc_offset_seconds
    body: dict[str, Any] = {
        "latitude": round(answer.weights.latitude, 4),
        "longitude": round(answer.weights.longitude, 4),
        "generationtime_ms": round(generation_ms, 3),
        "utc_offset_seconds": offset,
        "timezone": local.timezone,
        "timezone_abbreviation": local.abbreviation,
        "elevation": elevation(answer),
    }
    if request.current:
        now = format_times(np.array([answer.current_time]), timeformat=fmt, utc_offset_seconds=offset)[0]
        units = {"time": fmt, "interval": "seconds", **{s.key: s.unit for s in answer.current}}
        values = {s.key: _values(s)[0] for s in answer.current}
        body["current_units"] = units
        body["current"] = {"time": now, "interval": 900, **values}
    if answer.current_weather is not None:
        now = format_times(np.array([answer.current_time]), timeformat=fmt, utc_offset_seconds=offset)[0]
        weather = {
            k: None if math.isnan(v) else round(v, DECIMALS) for k, v in answer.current_weather.items()
        }
        body["current_weather"] = {"time": now, **weather}
    if request.hourly:
        times = format_times(answer.hourly_times, timeformat=fmt, utc_offset_seconds=offset)
        body["hourly_units"], body["hourly"] = _block(answer.hourly, times, fmt)
    if request.daily:
        times = format_times(answer.daily_times, timeformat=fmt, utc_offset_seconds=offset, unit="D")
        body["daily_units"], body["daily"] = _block(answer.daily, times, fmt)
    body.update({"model": request.entry.id, "run": request.run, "model_sha256": request.entry.sha256})
    return body


def render_json(request: ForecastRequest, answers: list[LocationAnswer], *, generation_ms: float) -> bytes:
    items = [location_json(request, a, generation_ms=generation_ms) for a in answers]
    body: Any = items[0] if len(items) == 1 else items
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def render_csv(request: ForecastRequest, answers: list[LocationAnswer]) -> bytes:
    """A header block per location, a blank line, then `location_id,time,<var> (<units>)...` hourly rows
    (and the same for daily when asked)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        ["location_id", "latitude", "longitude", "elevation", "utc_offset_seconds", "timezone",
         "timezone_abbreviation", "model", "run", "model_sha256"]
    )  # fmt: skip
    entry = request.entry
    for i, a in enumerate(answers):
        local = a.location.local
        writer.writerow(
            [i, round(a.weights.latitude, 4), round(a.weights.longitude, 4), elevation(a),
             local.utc_offset_seconds, local.timezone, local.abbreviation, entry.id, request.run, entry.sha256]
        )  # fmt: skip
    for block, times_of, unit in (("hourly", "hourly_times", "m"), ("daily", "daily_times", "D")):
        if not getattr(request, block):
            continue
        writer.writerow([])
        series_of = [getattr(a, block) for a in answers]
        writer.writerow(["location_id", "time", *(f"{s.key} ({s.unit})" for s in series_of[0])])
        for i, (a, series) in enumerate(zip(answers, series_of, strict=True)):
            times = format_times(
                getattr(a, times_of),
                timeformat=request.timeformat,
                utc_offset_seconds=a.location.local.utc_offset_seconds,
                unit=unit,
            )
            columns = [_values(s) for s in series]
            for k, t in enumerate(times):
                writer.writerow([i, t, *("" if c[k] is None else c[k] for c in columns)])
    return out.getvalue().encode()
