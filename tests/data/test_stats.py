"""Streaming per-channel statistics against a direct numpy computation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from fno_forecast.data.stats import compute_stats


def _canonical(values: np.ndarray, times: np.ndarray) -> xr.DataArray:
    t, c, h, w = values.shape
    return xr.DataArray(
        values.astype(np.float32),
        dims=("time", "channel", "lat", "lon"),
        coords={
            "time": times,
            "channel": [f"c{k}" for k in range(c)],
            "lat": np.linspace(80, -80, h),
            "lon": np.arange(w) * 10.0,
        },
        name="state",
    )


@pytest.mark.parametrize("chunk_steps", [1, 7, 1000])
def test_stats_match_numpy_for_any_chunking(chunk_steps: int) -> None:
    rng = np.random.default_rng(1)
    values = (
        rng.normal(size=(30, 2, 4, 5)) * np.array([3.0, 0.5])[None, :, None, None]
        + np.array([5.0e4, 280.0])[None, :, None, None]
    )
    values = values.astype(np.float32)
    times = pd.date_range("2013-01-01", periods=30, freq="6h").values
    stats = compute_stats(_canonical(values, times), chunk_steps=chunk_steps)
    v = values.astype(np.float64)
    np.testing.assert_allclose(stats.mean, v.mean(axis=(0, 2, 3)), rtol=1e-6)
    np.testing.assert_allclose(stats.std, v.std(axis=(0, 2, 3)), rtol=1e-4)
    np.testing.assert_allclose(stats.tendency_std, np.diff(v, axis=0).std(axis=(0, 2, 3)), rtol=1e-4)
    assert stats.mean.dtype == np.float32 and stats.mean.shape == (2,)


def test_tendency_skips_gaps() -> None:
    times = pd.date_range("2013-01-01", periods=20, freq="6h").values
    values = np.zeros((20, 1, 2, 2), dtype=np.float32)
    values[10:] = 100.0  # a jump exactly where the time axis has a gap
    keep = np.r_[0:10, 12:20]
    stats = compute_stats(_canonical(values[keep], times[keep]), chunk_steps=4)
    assert stats.tendency_std[0] == 0.0
    assert stats.std[0] == pytest.approx(float(np.std(values[keep])))
    assert stats.mean[0] == pytest.approx(800.0 / 18.0)


def test_block_steps_bound_the_memory_of_a_streaming_pass() -> None:
    from fno_forecast.data.stats import block_steps

    def canonical(channels: int, nlat: int, nlon: int) -> xr.DataArray:
        return xr.DataArray(
            np.zeros((1, channels, nlat, nlon), dtype=np.float32), dims=("time", "channel", "lat", "lon")
        )

    # 30 channels on 121 x 240 are 6.97 MB a step as float64: 38 steps in 256 MiB
    assert block_steps(canonical(30, 121, 240)) == 38
    assert block_steps(canonical(30, 721, 1440)) == 1  # 249 MB a step: one at a time
    assert block_steps(canonical(1, 25, 53)) == 256  # small grids: capped
    assert block_steps(canonical(30, 121, 240), budget_bytes=2**20) == 1
