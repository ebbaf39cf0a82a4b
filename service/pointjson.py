"""Rendering point forecasts: Open-Meteo's JSON shape (one object, or an array for several locations) or CSV."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import numpy as np

from fno_forecast.data.timeaxis import format_time
from service.engine import RolloutData
from service.points import PointWeights
from service.query import PointQuery

DECIMALS = 2


def _times(data: RolloutData, timeformat: str) -> list[Any]:
    valid = data.valid_times
    if timeformat == "unixtime":
        return valid.astype("int64").tolist()
    return [format_time(t) for t in valid]


def location_series(data: RolloutData, query: PointQuery, weights: PointWeights) -> dict[str, list[float]]:
    """`{variable: values at each lead}` for one location."""
    series = {}
    for name in query.variables:
        values = weights.apply(data.values[:, data.channel_index(name)])
        series[name] = np.round(values, DECIMALS).tolist()
    return series


def location_json(
    data: RolloutData, query: PointQuery, weights: PointWeights, *, times: list[Any], generation_ms: float
) -> dict[str, Any]:
    units = {"time": query.timeformat}
    units.update({name: data.units[data.channel_index(name)] for name in query.variables})
    return {
        "latitude": round(weights.latitude, 4),
        "longitude": round(weights.longitude, 4),
        "generationtime_ms": round(generation_ms, 3),
        "utc_offset_seconds": 0,
        "timezone": "GMT",
        "timezone_abbreviation": "GMT",
        "hourly_units": units,
        "hourly": {"time": times, **location_series(data, query, weights)},
        "model": query.entry.id,
        "run": query.run,
        "model_sha256": query.entry.sha256,
    }


def render_json(
    data: RolloutData, query: PointQuery, weights: list[PointWeights], *, generation_ms: float
) -> bytes:
    times = _times(data, query.timeformat)
    items = [location_json(data, query, w, times=times, generation_ms=generation_ms) for w in weights]
    body: Any = items[0] if len(items) == 1 else items
    return json.dumps(body, separators=(",", ":")).encode()


def render_csv(data: RolloutData, query: PointQuery, weights: list[PointWeights]) -> bytes:
    """A header block per location, a blank line, then `location_id,time,<var> (<units>)...` rows."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        ["location_id", "latitude", "longitude", "utc_offset_seconds", "model", "run", "model_sha256"]
    )
    for i, w in enumerate(weights):
        writer.writerow(
            [i, round(w.latitude, 4), round(w.longitude, 4), 0, query.entry.id, query.run, query.entry.sha256]
        )
    writer.writerow([])
    columns = [f"{n} ({data.units[data.channel_index(n)]})" for n in query.variables]
    writer.writerow(["location_id", "time", *columns])
    times = _times(data, query.timeformat)
    for i, w in enumerate(weights):
        series = location_series(data, query, w)
        for k, t in enumerate(times):
            writer.writerow([i, t, *(series[n][k] for n in query.variables)])
    return out.getvalue().encode()
