"""Reading /v1/forecast's query the way Open-Meteo reads it.

Lists come as commas and as repeated parameters (`hourly=a,b` and `hourly=a&hourly=b`, what the
official SDKs send), parameters Open-Meteo does not know are ignored (as Open-Meteo ignores them), and a
bad value is a 400 `{"error": true, "reason": ...}` whose reason names the parameter.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from service.problems import ApiError


def om_error(parameter: str, reason: str) -> ApiError:
    """Open-Meteo's answer to a bad parameter: 400, the reason naming it."""
    return ApiError(400, f"Parameter '{parameter}': {reason}", parameter=parameter)


class QueryParams:
    """The query's values by name, every occurrence kept in order."""

    def __init__(self, items: Iterable[tuple[str, str]]) -> None:
        self._values: dict[str, list[str]] = {}
        for key, value in items:
            self._values.setdefault(key, []).append(value)

    def text(self, name: str, *aliases: str) -> str | None:
        """The value of a single-valued parameter (the last one given), None when absent or empty."""
        for key in (name, *aliases):
            values = self._values.get(key)
            if values and values[-1].strip():
                return values[-1].strip()
        return None

    def items(self, name: str) -> list[str]:
        """A list parameter: every occurrence, each split at commas, blanks dropped."""
        return [p.strip() for value in self._values.get(name, []) for p in value.split(",") if p.strip()]

    def given(self, name: str) -> bool:
        return name in self._values


def numbers(
    params: QueryParams, name: str, *, low: float, high: float, allow_nan: bool = False
) -> list[float]:
    """A list of numbers in `low..high` (NaN passes when `allow_nan`, as Open-Meteo's `elevation=nan`)."""
    out = []
    for part in params.items(name):
        try:
            value = float(part)
        except ValueError:
            raise om_error(name, f"{part!r} is not a number") from None
        if math.isnan(value) and allow_nan:
            out.append(value)
            continue
        if not math.isfinite(value) or not low <= value <= high:
            raise om_error(name, f"must be in range of {low:g} to {high:g}. Given: {part}")
        out.append(value)
    return out


def integer(params: QueryParams, name: str, *, low: int, high: int, default: int | None) -> int | None:
    text = params.text(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise om_error(name, f"{text!r} is not an integer") from None
    if not low <= value <= high:
        raise om_error(name, f"must be in range of {low} to {high}. Given: {value}")
    return value


def choice(params: QueryParams, name: str, options: Iterable[str], default: str, *aliases: str) -> str:
    text = params.text(name, *aliases)
    if text is None:
        return default
    options = tuple(options)
    if text not in options:
        raise om_error(name, f"{text!r} is not one of {list(options)}")
    return text


def flag(params: QueryParams, name: str) -> bool:
    text = params.text(name)
    if text is None:
        return False
    if text.lower() in ("true", "1"):
        return True
    if text.lower() in ("false", "0"):
        return False
    raise om_error(name, f"{text!r} is not true or false")


# What GET /v1/forecast reads, for its OpenAPI description: (name, description).
DOCUMENTED: tuple[tuple[str, str], ...] = (
    ("latitude", "degrees north, -90..90; a comma list (or repeated) for several locations"),
    ("longitude", "degrees east, -180..180; as many as latitudes"),
    ("elevation", "metres, one per location (or nan); echoed, no downscaling is applied"),
    ("hourly", "Open-Meteo names (temperature_2m, temperature_850hPa, wind_speed_10m...) or channel names"),
    ("daily", "Open-Meteo daily names (temperature_2m_max, temperature_2m_min, ..._mean, ..._sum...)"),
    ("current", "Open-Meteo names, values at the run's time"),
    ("current_weather", "true for Open-Meteo's legacy current_weather block"),
    ("temperature_unit", "celsius (default) or fahrenheit"),
    ("wind_speed_unit", "kmh (default), ms, mph or kn"),
    ("precipitation_unit", "mm (default) or inch"),
    ("timeformat", "iso8601 (default) or unixtime"),
    ("timezone", "GMT (default), an IANA name, or auto (from the coordinates); a comma list per location"),
    ("past_days", "0..92 days before the run's day"),
    ("forecast_days", "0..16 days from the run's day (default 7)"),
    ("forecast_hours", "hours from the run's hour, instead of forecast_days"),
    ("past_hours", "hours before the run's hour, with forecast_hours"),
    ("start_date", "YYYY-MM-DD, with end_date, instead of forecast_days"),
    ("end_date", "YYYY-MM-DD"),
    ("models", "best_match (the default model) or a model id"),
    ("run", "init time, e.g. 2014-02-28T18:00; default the latest; 'now' for the answer's time axis"),
    ("cell_selection", "bilinear (default), nearest, land or sea (no land-sea mask: the nearest cell)"),
    ("format", "json (default), csv or flatbuffers (Open-Meteo's SDK encoding)"),
)


def openapi_parameters() -> list[dict[str, Any]]:
    return [
        {"name": name, "in": "query", "required": name in ("latitude", "longitude"), "schema": {"type": "string"},
         "description": text}
        for name, text in DOCUMENTED
    ]  # fmt: skip
