"""Time step detection, gaps, periods and calendars."""

from __future__ import annotations

import cftime
import numpy as np
import pandas as pd
import pytest

from fno_forecast.data.timeaxis import (
    detect_step,
    parse_period,
    period_mask,
    time_info,
    times_to_hours,
)
from fno_forecast.errors import DataError


@pytest.mark.parametrize(("freq", "hours"), [("1h", 1.0), ("3h", 3.0), ("6h", 6.0), ("1D", 24.0)])
def test_detect_regular_steps(freq: str, hours: float) -> None:
    times = pd.date_range("2013-01-01", periods=20, freq=freq).values
    assert detect_step(times) == (hours, 0)
    info = time_info(times)
    assert info.steps == 20 and info.gaps == () and info.regular


def test_detect_monthly_steps_of_unequal_length() -> None:
    times = pd.date_range("2013-01-01", periods=14, freq="MS").values
    step_hours, step_months = detect_step(times)
    assert step_months == 1 and step_hours == pytest.approx(730.485)
    assert time_info(times).gaps == ()
    with_gap = np.delete(times, [5, 6])
    gaps = time_info(with_gap).gaps
    assert [(g.after, g.before, g.missing_steps) for g in gaps] == [
        ("2013-05-01T00:00", "2013-08-01T00:00", 2)
    ]


def test_gaps_are_reported_with_their_dates() -> None:
    times = pd.date_range("2013-01-01", periods=40, freq="6h").values
    times = np.delete(times, [10, 11, 12, 30])
    info = time_info(times)
    assert info.step_hours == 6.0 and info.regular
    assert [g.to_dict() for g in info.gaps] == [
        {"after": "2013-01-03T06:00", "before": "2013-01-04T06:00", "missing_steps": 3},
        {"after": "2013-01-08T06:00", "before": "2013-01-08T18:00", "missing_steps": 1},
    ]


def test_non_increasing_times_are_an_error() -> None:
    times = pd.date_range("2013-01-01", periods=5, freq="6h").values[[0, 1, 3, 2, 4]]
    with pytest.raises(DataError, match="not increasing at 2013-01-01T12:00"):
        detect_step(times)


def test_parse_period_end_is_inclusive_through_the_day() -> None:
    start, end = parse_period("2013-01-01/2014-06-30")
    assert start == np.datetime64("2013-01-01T00:00:00")
    assert end == np.datetime64("2014-06-30T23:59:59")
    times = pd.date_range("2014-06-29", periods=12, freq="6h").values
    assert period_mask(times, "2014-06-30/2014-06-30").sum() == 4


@pytest.mark.parametrize("text", ["2013-01-01", "2013/2014", "2014-01-01/2013-01-01", ""])
def test_parse_period_rejects_bad_text(text: str) -> None:
    with pytest.raises(DataError, match="period"):
        parse_period(text)


@pytest.mark.parametrize("calendar", ["noleap", "360_day", "julian"])
def test_cftime_calendars(calendar: str) -> None:
    times = cftime.num2date(np.arange(0, 24 * 70, 6.0), "hours since 2001-02-01", calendar=calendar)
    info = time_info(times)
    assert info.step_hours == 6.0 and info.calendar == calendar and info.steps == 280 and not info.gaps
    hours = times_to_hours(times)
    assert np.allclose(np.diff(hours), 6.0)
    # Feb 2001 has 30 days in the 360-day calendar, 28 in the others.
    in_feb = period_mask(times, "2001-02-01/2001-02-28").sum()
    assert in_feb == 28 * 4
