"""The time axis: step detection, gaps, periods, and times as hours.

Times travel as float64 hours since 1970-01-01 in the data's own calendar (`times_to_hours`), so standard
(`datetime64`) and cftime calendars (`noleap`, `360_day`, ...) go through the same arithmetic. A step is
detected as the most common difference between consecutive times; a difference that is a whole multiple of
the step is a gap (reported with its dates), any other difference makes the axis irregular. Monthly data
(every time on the first of a month at 00 UTC) steps in calendar months, whose lengths in hours differ.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from fno_forecast.errors import ConfigError, DataError, FnoForecastError

HOURS_PER_MONTH = 365.2425 * 24.0 / 12.0
MONTHLY_MIN_HOURS = 27 * 24.0  # steps this long or longer may be calendar months (`detect_step`)
_EPOCH = "hours since 1970-01-01 00:00:00"
_PERIOD = re.compile(r"^\s*(\d{4}-\d{2}-\d{2}(?:T[\d:]+)?)\s*/\s*(\d{4}-\d{2}-\d{2}(?:T[\d:]+)?)\s*$")


@dataclass(frozen=True)
class TimeGap:
    """Missing steps between two consecutive times present in the data."""

    after: str
    before: str
    missing_steps: int

    def to_dict(self) -> dict[str, Any]:
        return {"after": self.after, "before": self.before, "missing_steps": self.missing_steps}


@dataclass(frozen=True)
class TimeInfo:
    """Summary of a time axis. `step_months` is non-zero for calendar-monthly data.

    `irregular` lists the times (ISO) after which the difference is not a whole number of steps.
    """

    start: str
    end: str
    steps: int
    step_hours: float
    gaps: tuple[TimeGap, ...] = ()
    step_months: int = 0
    calendar: str = "standard"
    irregular: tuple[str, ...] = field(default_factory=tuple)

    @property
    def regular(self) -> bool:
        return not self.irregular

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "end": self.end,
            "steps": self.steps,
            "step_hours": self.step_hours,
            "step_months": self.step_months,
            "calendar": self.calendar,
            "gaps": [g.to_dict() for g in self.gaps],
            "irregular": list(self.irregular),
        }


def calendar_of(times: Any) -> str:
    """The calendar name of a time coordinate's values ("standard" for datetime64)."""
    values = np.asarray(times)
    if values.size and values.dtype == object:
        return str(getattr(values.flat[0], "calendar", "standard") or "standard")
    return "standard"


def times_to_hours(times: Any) -> np.ndarray:
    """Float64 hours since 1970-01-01 for datetime64 or cftime values (in their own calendar)."""
    values = np.asarray(times)
    if values.dtype.kind == "M":
        return values.astype("datetime64[s]").astype(np.int64).astype(np.float64) / 3600.0
    if values.dtype == object:
        import cftime

        if values.size == 0:
            return np.zeros(0, dtype=np.float64)
        num = cftime.date2num(list(values.ravel()), _EPOCH, calendar=calendar_of(values))
        return np.asarray(num, dtype=np.float64).reshape(values.shape)
    raise DataError(None, f"time values of dtype {values.dtype} are not dates")


def format_time(value: Any) -> str:
    """ISO text of one datetime64 or cftime value, to the hour."""
    if isinstance(value, np.datetime64) or np.asarray(value).dtype.kind == "M":
        return str(np.datetime_as_string(np.datetime64(value, "s"), unit="m"))
    return value.strftime("%Y-%m-%dT%H:%M")


def _month_index(times: np.ndarray) -> np.ndarray | None:
    """Months since year 0 when every time is on day 1 at 00:00; None otherwise."""
    if times.dtype.kind == "M":
        days = times.astype("datetime64[D]")
        if not np.all(times == days.astype(times.dtype)):
            return None
        months = days.astype("datetime64[M]")
        if not np.all(months.astype("datetime64[D]") == days):
            return None
        return months.astype(np.int64)
    if all(t.day == 1 and t.hour == 0 and t.minute == 0 for t in times):
        return np.array([t.year * 12 + t.month - 1 for t in times], dtype=np.int64)
    return None


def _most_common(diffs: np.ndarray) -> float:
    values, counts = np.unique(np.round(diffs, 6), return_counts=True)
    return float(values[np.argmax(counts)])


def detect_step(times: Any) -> tuple[float, int]:
    """`(step_hours, step_months)` of a time axis; `step_months` is 0 unless the data is monthly.

    Raises DataError for fewer than 2 times or non-increasing times.
    """
    values = np.asarray(times)
    if values.size < 2:
        raise DataError(None, f"cannot detect a time step from {values.size} time(s)")
    hours = times_to_hours(values)
    diffs = np.diff(hours)
    if np.any(diffs <= 0):
        at = int(np.argmax(diffs <= 0))
        raise DataError(None, f"times are not increasing at {format_time(values[at + 1])}")
    months = _month_index(values) if np.all(diffs >= MONTHLY_MIN_HOURS) else None
    if months is not None:
        step_months = int(_most_common(np.diff(months).astype(np.float64)))
        return step_months * HOURS_PER_MONTH, step_months
    return _most_common(diffs), 0


def months_per_step(step_hours: float) -> int:
    """k where `step_hours` is `detect_step`'s step of k calendar months (k x HOURS_PER_MONTH), else 0."""
    months = step_hours / HOURS_PER_MONTH
    if step_hours >= MONTHLY_MIN_HOURS and abs(months - round(months)) < 1e-9:
        return round(months)
    return 0


def regular_hours(hours: Any, step_hours: float) -> bool:
    """Whether increasing `hours` are each one step apart: exactly, for a fixed step; for a step of k
    calendar months (`months_per_step`), between k x 28 and k x 31 days (`consecutive` asks the same of
    times)."""
    diffs = np.diff(np.asarray(hours, dtype=np.float64))
    months = months_per_step(step_hours)
    if months:
        return bool(np.all((diffs >= 28 * 24 * months - 1e-6) & (diffs <= 31 * 24 * months + 1e-6)))
    return bool(np.allclose(diffs, step_hours))


def consecutive(times: Any, *, step_hours: float, step_months: int = 0) -> np.ndarray:
    """Bool `(time-1,)`: whether time i+1 follows time i by exactly one step."""
    values = np.asarray(times)
    if values.size < 2:
        return np.zeros(0, dtype=bool)
    if step_months:
        months = _month_index(values)
        if months is None:
            return np.zeros(values.size - 1, dtype=bool)
        return np.diff(months) == step_months
    return np.abs(np.diff(times_to_hours(values)) - step_hours) < 1e-6


def time_info(times: Any) -> TimeInfo:
    """Start, end, step, gaps and irregular steps of a time axis (at least 2 times, increasing)."""
    values = np.asarray(times)
    if values.size == 1:
        only = format_time(values[0])
        return TimeInfo(only, only, 1, 0.0, calendar=calendar_of(values))
    step_hours, step_months = detect_step(values)
    if step_months:
        diffs = np.diff(_month_index(values)).astype(np.float64)
        unit = float(step_months)
    else:
        diffs = np.diff(times_to_hours(values))
        unit = step_hours
    ratio = diffs / unit
    whole = np.abs(ratio - np.round(ratio)) < 1e-6
    gaps = tuple(
        TimeGap(format_time(values[i]), format_time(values[i + 1]), int(round(ratio[i])) - 1)
        for i in np.flatnonzero(whole & (np.round(ratio) > 1))
    )
    irregular = tuple(format_time(values[i]) for i in np.flatnonzero(~whole))
    return TimeInfo(
        start=format_time(values[0]),
        end=format_time(values[-1]),
        steps=int(values.size),
        step_hours=step_hours,
        gaps=gaps,
        step_months=step_months,
        calendar=calendar_of(values),
        irregular=irregular,
    )


def parse_period(text: str) -> tuple[np.datetime64, np.datetime64]:
    """`"START/END"` ISO dates -> `(start, end)` datetime64[s]; END is inclusive through that day's end.

    `"2013-01-01/2014-06-30"` gives `(2013-01-01T00:00:00, 2014-06-30T23:59:59)`. A bare date END covers
    its whole day; an END with a time of day is taken as given.
    """
    match = _PERIOD.match(text or "")
    if not match:
        raise DataError(None, f"period {text!r} is not START/END in ISO dates (e.g. 2013-01-01/2014-06-30)")
    try:
        start = np.datetime64(match.group(1), "s")
        end = np.datetime64(match.group(2), "s")
    except ValueError as error:
        raise DataError(None, f"period {text!r}: {error}") from None
    if "T" not in match.group(2):
        end = end + np.timedelta64(86399, "s")
    if end < start:
        raise DataError(None, f"period {text!r} ends before it starts")
    return start, end


def period_hours(period: str | tuple[Any, Any], *, calendar: str = "standard") -> tuple[float, float]:
    """A period as inclusive bounds in hours since the epoch, in the given calendar."""
    start, end = parse_period(period) if isinstance(period, str) else period
    if calendar in ("standard", "gregorian", "proleptic_gregorian"):
        return float(times_to_hours(np.datetime64(start, "s"))), float(
            times_to_hours(np.datetime64(end, "s"))
        )
    import cftime

    bounds = []
    for value in (start, end):
        text = str(np.datetime64(value, "s"))
        date = cftime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S", calendar=calendar)
        bounds.append(float(cftime.date2num(date, _EPOCH, calendar=calendar)))
    return bounds[0], bounds[1]


def period_mask(times: Any, period: str | tuple[Any, Any]) -> np.ndarray:
    """Bool mask of the times inside a period (both ends included)."""
    values = np.asarray(times)
    low, high = period_hours(period, calendar=calendar_of(values))
    hours = times_to_hours(values)
    return (hours >= low) & (hours <= high)


def select_period(array: xr.DataArray, period: str | tuple[Any, Any]) -> xr.DataArray:
    """The part of an array (with a `time` dim) inside a period; DataError when none of it is."""
    mask = period_mask(array["time"].values, period)
    if not mask.any():
        info = time_info(array["time"].values)
        raise DataError(
            array.attrs.get("source"),
            f"period {period!r} holds no time steps (data covers {info.start} .. {info.end})",
        )
    return array.isel(time=np.flatnonzero(mask))


def steps_before(array: xr.DataArray, time: Any) -> xr.DataArray:
    """The steps of a time-sorted array before `time`, as a slice: a view of a loaded array, where an
    index list would copy it."""
    return array.isel(time=slice(0, int(np.sum(array["time"].values < time))))


DEFAULT_LEADS_HOURS = (6.0, 24.0, 72.0, 120.0, 240.0)


def lead_steps_for(
    leads_hours: tuple[float, ...], *, step_hours: float, name: str = "val_leads_hours"
) -> tuple[int, ...]:
    """Lead times in steps; each lead given must be a whole number of steps (else a ConfigError naming `name`).

    No leads given: 6, 24, 72, 120 and 240 h, each rounded up to whole data steps (on daily data: 1, 3, 5
    and 10 steps), so the defaults work on any time step.
    """
    if not leads_hours:
        return tuple(sorted({max(1, math.ceil(h / step_hours - 1e-9)) for h in DEFAULT_LEADS_HOURS}))
    return tuple(lead_steps(hours, step_hours=step_hours, name=name) for hours in leads_hours)


def lead_steps(
    lead_hours: float, *, step_hours: float, name: str, error: type[FnoForecastError] = ConfigError
) -> int:
    """The number of steps in `lead_hours`; `error` (naming `name`) unless it is a positive whole multiple."""
    ratio = float(lead_hours) / step_hours
    if not math.isfinite(ratio) or ratio < 1 - 1e-6 or abs(ratio - round(ratio)) > 1e-6:
        raise error(f"{name}: {lead_hours:g} h is not a positive multiple of the data step {step_hours:g} h")
    return int(round(ratio))
