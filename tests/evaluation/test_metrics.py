from __future__ import annotations

import numpy as np
import pytest

from fno_forecast.data.grid import latitude_weights
from fno_forecast.evaluation.metrics import (
    SkillAccumulator,
    anomaly_correlation,
    weighted_bias,
    weighted_mse,
)

LAT = np.linspace(80.0, -80.0, 9)


def _field(seed: int, shape=(3, 2, 9, 12)) -> np.ndarray:
    return np.random.default_rng(seed).normal(280.0, 5.0, size=shape).astype(np.float32)


def test_constant_error_gives_that_rmse_and_bias():
    truth = _field(0)
    forecast = truth + 1.5
    w = latitude_weights(LAT)
    np.testing.assert_allclose(np.sqrt(weighted_mse(forecast, truth, w)), 1.5, rtol=1e-5)
    np.testing.assert_allclose(weighted_bias(forecast, truth, w), 1.5, rtol=1e-5)


def test_weighted_mse_weights_rows_by_cosine():
    truth = np.zeros((1, 1, 9, 4))
    forecast = truth.copy()
    forecast[0, 0, 0] = 2.0  # error only in the 80N row
    w = latitude_weights(LAT)
    expected = 4.0 * w[0] / 9.0  # one row of nine, weight w[0], mean weight 1
    assert weighted_mse(forecast, truth, w)[0, 0] == pytest.approx(expected)


def test_acc_perfect_is_one_and_negated_anomaly_is_minus_one():
    truth, clim = _field(1), _field(2)
    w = latitude_weights(LAT)
    np.testing.assert_allclose(anomaly_correlation(truth, truth, clim, w), 1.0, atol=1e-9)
    np.testing.assert_allclose(anomaly_correlation(2 * clim - truth, truth, clim, w), -1.0, atol=1e-9)


def test_acc_of_climatology_forecast_is_undefined():
    truth, clim = _field(1), _field(2)
    acc = anomaly_correlation(clim, truth, clim, latitude_weights(LAT))
    assert np.isnan(acc).all()


def test_acc_of_scaled_anomaly_is_one():
    truth, clim = _field(3), _field(4)
    forecast = clim + 0.3 * (truth - clim)
    np.testing.assert_allclose(
        anomaly_correlation(forecast, truth, clim, latitude_weights(LAT)), 1.0, atol=1e-9
    )


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="shapes differ"):
        weighted_mse(_field(0), _field(1, shape=(3, 2, 9, 11)), latitude_weights(LAT))


def test_accumulator_is_time_mean_of_mse_then_sqrt():
    w = latitude_weights(LAT)
    truth = np.zeros((2, 1, 9, 12))
    forecast = truth.copy()
    forecast[0] += 1.0
    forecast[1] += 3.0
    acc = SkillAccumulator(weights=w, n_channels=1)
    acc.add(6, forecast[:1], truth[:1], truth[:1] - 1.0)
    acc.add(6, forecast[1:], truth[1:], truth[1:] - 1.0)
    result = acc.result()
    assert acc.count(6) == 2
    assert result["rmse"][6.0][0] == pytest.approx(np.sqrt((1.0 + 9.0) / 2.0))
    assert result["bias"][6.0][0] == pytest.approx(2.0)
    # the anomalies are constant fields of the same sign: correlation 1 on every init
    assert result["acc"][6.0][0] == pytest.approx(1.0)


def test_accumulator_rejects_wrong_channel_count():
    acc = SkillAccumulator(weights=latitude_weights(LAT), n_channels=3)
    with pytest.raises(ValueError, match="3 channels"):
        acc.add(6, _field(0), _field(1), _field(2))
