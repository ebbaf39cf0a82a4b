"""Point extraction: longitude conventions, domain checks, bilinear and nearest weights."""

from __future__ import annotations

import numpy as np
import pytest

from fno_forecast.data.schema import GridInfo
from service.points import OutsideDomain, point_weights

NCEP = GridInfo.from_arrays(np.arange(75.0, 14.9, -2.5), np.arange(200.0, 330.1, 2.5))
GLOBAL = GridInfo.from_arrays(np.arange(90.0, -90.1, -30.0), np.arange(0.0, 359.0, 60.0))


def linear_field(grid: GridInfo) -> np.ndarray:
    lat = np.asarray(grid.lat)[:, None]
    lon = np.asarray(grid.lon)[None, :]
    return 2.0 * lat + 0.5 * lon + 1.0


def test_bilinear_is_exact_on_a_linear_field_with_negative_longitude() -> None:
    field = linear_field(NCEP)
    weights = point_weights(NCEP, 40.3, -100.7, method="bilinear")  # 259.3 E
    assert weights.apply(field) == pytest.approx(2.0 * 40.3 + 0.5 * 259.3 + 1.0, abs=1e-9)
    assert sum(weights.weights) == pytest.approx(1.0)
    assert (weights.latitude, weights.longitude) == (40.3, -100.7)


def test_nearest_returns_the_grid_point_in_the_request_convention() -> None:
    weights = point_weights(NCEP, 40.3, -100.7, method="nearest")
    assert weights.latitude == 40.0
    assert weights.longitude == pytest.approx(-100.0)  # grid point 260 E, said the caller's way
    assert weights.apply(linear_field(NCEP)) == pytest.approx(2.0 * 40.0 + 0.5 * 260.0 + 1.0)


def test_points_on_the_domain_edge_are_inside() -> None:
    field = linear_field(NCEP)
    assert point_weights(NCEP, 75.0, 330.0, method="bilinear").apply(field) == pytest.approx(150 + 165 + 1)
    assert point_weights(NCEP, 15.0, -160.0, method="bilinear").apply(field) == pytest.approx(30 + 100 + 1)


@pytest.mark.parametrize(
    ("lat", "lon", "parameter"),
    [(10.0, 250.0, "latitude"), (40.0, 0.0, "longitude"), (40.0, -20.0, "longitude")],
)
def test_outside_the_domain_names_the_axis_and_states_the_domain(
    lat: float, lon: float, parameter: str
) -> None:
    with pytest.raises(OutsideDomain) as caught:
        point_weights(NCEP, lat, lon, method="bilinear")
    assert caught.value.parameter == parameter
    assert "latitude 15..75, longitude 200..330" in str(caught.value)


def test_global_grid_wraps_across_the_last_meridian() -> None:
    values = np.zeros((GLOBAL.nlat, GLOBAL.nlon))
    values[:, 0] = 6.0  # 0 E
    values[:, -1] = 0.0  # 300 E
    weights = point_weights(GLOBAL, 0.0, -30.0, method="bilinear")  # halfway from 300 E to 360 E
    assert weights.apply(values) == pytest.approx(3.0)
    nearest = point_weights(GLOBAL, 0.0, 350.0, method="nearest")
    assert nearest.lon_index == (0,)
