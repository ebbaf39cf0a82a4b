"""Time for /v1/forecast: timezones, the answer's hourly axis, and 1-hour values from the model's step.

"Now" is the run's init time: the answer starts at local midnight of the run's day (Open-Meteo starts at
local midnight of today), `past_days` before it, for `forecast_days` days; `forecast_hours` counts from
the run's hour instead. One UTC offset per answer, the zone's offset at the run (as Open-Meteo gives one
`utc_offset_seconds`). Hourly values are linear in time between the model's native steps (analyses up to
the run, forecast steps after it); hours outside what the model has are null.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import numpy as np

from service.om_params import om_error

UTC_NAMES = {"gmt", "utc", "z", "etc/utc", "etc/gmt"}
HOUR = np.timedelta64(1, "h")


@cache
def _finder() -> object:
    """The timezone polygon index, loaded on the first `timezone=auto` (it takes a moment)."""
    from timezonefinder import TimezoneFinder

    return TimezoneFinder()


@cache
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones())


def resolve_timezone(text: str | None, latitude: float, longitude: float) -> str:
    """An IANA zone name, or "GMT"; `auto` looks the zone up from the coordinates."""
    if text is None or text.lower() in UTC_NAMES:
        return "GMT"
    if text.lower() == "auto":
        found = _finder().timezone_at(lat=latitude, lng=longitude)  # type: ignore[attr-defined]
        return found or "GMT"
    if text not in _zone_names():
        raise om_error(
            "timezone", f"{text!r} is not a valid timezone (an IANA name such as Europe/Berlin, or auto)"
        )
    return text


@dataclass(frozen=True)
class LocalTime:
    """The zone of one location and its offset at the run."""

    timezone: str
    utc_offset_seconds: int
    abbreviation: str


def local_time(timezone: str, at: np.datetime64) -> LocalTime:
    if timezone == "GMT":
        return LocalTime("GMT", 0, "GMT")
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise om_error("timezone", f"{timezone!r} is not a valid timezone") from None
    when = dt.datetime.fromtimestamp(int(at.astype("datetime64[s]").astype(np.int64)), tz=dt.timezone.utc)
    local = when.astimezone(zone)
    offset = local.utcoffset() or dt.timedelta(0)
    return LocalTime(timezone, int(offset.total_seconds()), local.tzname() or timezone)


@dataclass(frozen=True)
class Window:
    """What the answer covers, in days or hours relative to the run (local time)."""

    past_days: int = 0
    forecast_days: int = 7
    forecast_hours: int | None = None
    past_hours: int | None = None
    start_date: np.datetime64 | None = None
    end_date: np.datetime64 | None = None


def hourly_axis(window: Window, run: np.datetime64, utc_offset_seconds: int) -> np.ndarray:
    """The answer's hours as UTC `datetime64[s]`."""
    offset = np.timedelta64(utc_offset_seconds, "s")
    local_run = (run.astype("datetime64[s]") + offset).astype("datetime64[h]")
    if window.start_date is not None and window.end_date is not None:
        first = window.start_date.astype("datetime64[h]")
        count = int((window.end_date - window.start_date).astype(int) + 1) * 24
    elif window.forecast_hours is not None:
        first = local_run - (window.past_hours or 0) * HOUR
        count = window.forecast_hours + (window.past_hours or 0)
    else:
        first = local_run.astype("datetime64[D]").astype("datetime64[h]") - window.past_days * 24 * HOUR
        count = (window.past_days + window.forecast_days) * 24
    local = first + np.arange(count) * HOUR
    return local.astype("datetime64[s]") - offset


def interpolate(times: np.ndarray, values: np.ndarray, at: np.ndarray) -> np.ndarray:
    """`values (time, ...)` at native `times` -> `(len(at), ...)`, linear in time, NaN outside `times`."""
    x = times.astype("datetime64[s]").astype(np.float64)
    xi = at.astype("datetime64[s]").astype(np.float64)
    flat = values.reshape(len(times), -1)
    if len(times) == 0:
        return np.full((len(at), *values.shape[1:]), np.nan)
    out = np.stack(
        [np.interp(xi, x, flat[:, k], left=np.nan, right=np.nan) for k in range(flat.shape[1])], axis=1
    )
    return out.reshape(len(at), *values.shape[1:])


def local_days(hours_utc: np.ndarray, utc_offset_seconds: int) -> tuple[np.ndarray, np.ndarray]:
    """The local date of each hour, and the distinct dates in order."""
    local = hours_utc.astype("datetime64[s]") + np.timedelta64(utc_offset_seconds, "s")
    days = local.astype("datetime64[D]")
    return days, np.unique(days)


def format_times(times_utc: np.ndarray, *, timeformat: str, utc_offset_seconds: int, unit: str = "m") -> list:
    """ISO 8601 local times (`YYYY-MM-DDTHH:MM`, or dates for unit "D"), or unix seconds (UTC)."""
    if timeformat == "unixtime":
        return times_utc.astype("datetime64[s]").astype(np.int64).tolist()
    local = times_utc.astype("datetime64[s]") + np.timedelta64(utc_offset_seconds, "s")
    return [str(t) for t in local.astype(f"datetime64[{unit}]")]
