"""`run` read in one place; longitudes wrapped by the library's one function (points and boxes alike)."""

from __future__ import annotations

import numpy as np
import pytest

from fno_forecast.data.timeaxis import format_time
from service.gridded import BBox
from service.runs import run_time, valid_times


@pytest.mark.parametrize("text", ["2014-02-28T18:00", "2014-02-28T18:00Z", " 2014-02-28T18:00:00Z "])
def test_run_is_read_with_or_without_a_zone_suffix(text: str) -> None:
    assert format_time(run_time(text)) == "2014-02-28T18:00"


@pytest.mark.parametrize("text", ["yesterday", "2014-13-01T00:00", "", "NaT"])
def test_a_run_that_is_no_time_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        run_time(text)


def test_valid_times_add_whole_seconds_of_lead() -> None:
    init = run_time("2014-02-28T18:00")
    times = valid_times(init, np.array([6.0, 1.5, 240.0]))
    assert [format_time(t) for t in times] == ["2014-03-01T00:00", "2014-02-28T19:30", "2014-03-10T18:00"]


@pytest.mark.parametrize(
    ("west", "east", "inside"),
    [
        (-110.0, -80.0, [250.0, 260.0, 280.0]),  # the same box in 0..360 grid longitudes
        (170.0, -170.0, [170.0, 180.0, -175.0, 190.0]),  # across the date line
        (0.0, 360.0, [0.0, 90.0, 359.0]),  # all longitudes
    ],
)
def test_box_longitudes_in_any_convention(west: float, east: float, inside: list[float]) -> None:
    box = BBox(south=-90, west=west, north=90, east=east)
    assert box.lon_mask(np.asarray(inside)).all()
    assert not box.lon_mask(np.asarray([west - 1.0, east + 1.0])).any() or east - west == 360.0
