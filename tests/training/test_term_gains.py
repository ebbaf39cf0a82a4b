"""The gains of the climatology's harmonics: estimated on a bounded sample when the data is large."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from fno_forecast.climatology import gain_sample, term_gains


def _array(*, annual: float, diurnal: float) -> xr.DataArray:
    """4 years 6-hourly on 9 x 16, 2 channels: the cycles given plus unit noise (13 MB as float64)."""
    times = pd.date_range("2000-01-01", periods=4 * 1461, freq="6h")
    hours = (times - times[0]) / pd.Timedelta(hours=1)
    rng = np.random.default_rng(0)
    cycle = annual * np.sin(2 * np.pi * hours / 8766.0) + diurnal * np.cos(2 * np.pi * hours / 24.0)
    values = cycle.to_numpy()[:, None, None, None] + rng.standard_normal((times.size, 2, 9, 16))
    return xr.DataArray(
        values.astype(np.float32),
        dims=("time", "channel", "lat", "lon"),
        coords={"time": times, "lat": np.linspace(40.0, 0.0, 9), "lon": np.arange(16.0)},
    )


def test_a_small_array_is_fitted_whole_and_a_large_one_on_a_bounded_sample() -> None:
    array = _array(annual=1.0, diurnal=1.0)
    assert gain_sample(array) is array
    sample = gain_sample(array, budget_bytes=2**20)
    assert sample.size * 8 <= 2**20 + 2 * 8 * 2 * 9 * 16  # the budget, give or take a rounded run
    assert sample.sizes["time"] < array.sizes["time"] // 10
    hours = sample["time"].dt.hour.values
    assert set(hours) == {0, 6, 12, 18}  # every hour of the day
    months = sample["time"].dt.month.values
    assert len(set(months)) == 12  # every season


@pytest.mark.parametrize(("annual", "diurnal"), [(1.0, 1.0), (0.0, 0.0), (1.0, 0.0)])
def test_the_sampled_gains_match_the_full_ones(annual: float, diurnal: float) -> None:
    array = _array(annual=annual, diurnal=diurnal)
    full = term_gains(array, annual=1, diurnal=1)
    sampled = term_gains(array, annual=1, diurnal=1, sample_bytes=2**20)
    assert sampled == pytest.approx(full, abs=0.03)
    # the decision (at least 5% of the variance) is the same
    assert [g >= 0.05 for g in sampled] == [annual > 0, diurnal > 0]
