"""Grid geometry: latitude weights (loss, scores, plots share them) and longitude conventions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fno_forecast.data.grid import latitude_weight_tensor, latitude_weights, weighted_rmse_2d, wrap_longitude

LAT = np.linspace(80.0, -80.0, 9)


def test_latitude_weights_mean_one_and_cosine_shape() -> None:
    w = latitude_weights(LAT)
    assert w.mean() == pytest.approx(1.0)
    assert w[4] / w[0] == pytest.approx(1.0 / np.cos(np.deg2rad(80.0)))


def test_latitude_weights_reject_bad_lat() -> None:
    with pytest.raises(ValueError, match="lat"):
        latitude_weights(np.array([95.0, 0.0]))
    with pytest.raises(ValueError, match="1-D"):
        latitude_weights(np.zeros((2, 2)))


def test_poles_get_zero_weight_not_negative() -> None:
    w = latitude_weights(np.array([90.0, 45.0, 0.0, -45.0, -90.0]))
    assert w[0] == pytest.approx(0.0, abs=1e-12) and w[-1] == pytest.approx(0.0, abs=1e-12)
    assert np.all(w >= 0.0)


def test_tensor_form_broadcasts_over_batch_channel_lat_lon() -> None:
    weights = latitude_weight_tensor(np.array([60.0, 0.0, -60.0]))
    assert weights.shape == (1, 1, 3, 1)
    assert torch.allclose(weights.flatten(), torch.tensor([0.5, 1.0, 0.5]) / (2.0 / 3.0))


def test_weighted_rmse_of_a_field() -> None:
    error = np.zeros((3, 4))
    error[1] = 2.0  # only the equator row is wrong
    lat = np.array([60.0, 0.0, -60.0])
    expected = np.sqrt(4.0 * latitude_weights(lat)[1] / 3.0)
    assert weighted_rmse_2d(error, lat) == pytest.approx(expected)


def test_wrap_longitude_into_the_grid_convention() -> None:
    assert wrap_longitude(-100.0, start=0.0) == pytest.approx(260.0)
    assert wrap_longitude(260.0, start=-180.0) == pytest.approx(-100.0)
    assert wrap_longitude(200.0, start=200.0) == pytest.approx(200.0)
    np.testing.assert_allclose(
        wrap_longitude(np.array([-180.0, 179.0, 540.0]), start=0.0), [180.0, 179.0, 180.0]
    )
