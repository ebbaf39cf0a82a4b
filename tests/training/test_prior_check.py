"""The held-out prior check: the same scores as scoring the held-out third whole, read a chunk at a time."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from fno_forecast.climatology import fit_climatology
from fno_forecast.data.grid import latitude_weights
from fno_forecast.data.timeaxis import times_to_hours
from fno_forecast.data.windows import window_starts
from fno_forecast.training import prior_check
from fno_forecast.training.relaxation import fit_relaxation

LEADS = (1, 4, 12)


def _array(steps: int = 600, seed: int = 0) -> xr.DataArray:
    """Two channels of AR(1) anomalies (different persistence and scale) on a diurnal cycle, 6-hourly."""
    rng = np.random.default_rng(seed)
    times = pd.date_range("2013-01-01", periods=steps, freq="6h").values
    hours = times_to_hours(times)
    anomaly = np.zeros((steps, 2, 6, 8))
    for t in range(1, steps):
        anomaly[t] = np.array([0.9, 0.6])[:, None, None] * anomaly[t - 1] + rng.standard_normal((2, 6, 8))
    cycle = np.cos(2 * np.pi * hours / 24.0)[:, None, None, None]
    values = np.array([280.0, 1000.0])[None, :, None, None] + np.array([1.0, 5.0])[None, :, None, None] * (
        cycle + anomaly
    )
    return xr.DataArray(
        values.astype(np.float32),
        dims=("time", "channel", "lat", "lon"),
        coords={"time": times, "channel": ["t", "p"], "lat": np.linspace(50, 40, 6), "lon": np.arange(8.0)},
    )


def _reference(array: xr.DataArray) -> tuple[list[float], list[float]]:
    """The check as it scored before it streamed: the held-out third loaded whole, every init."""
    split = int(round(array.sizes["time"] * 2 / 3))
    first, rest = array.isel(time=slice(0, split)), array.isel(time=slice(split, None))
    climatology = fit_climatology(first, annual=0, diurnal=2)
    keep = 1.0 - fit_relaxation(first, climatology).astype(np.float64)
    times = rest["time"].values
    values = rest.values.astype(np.float64)
    clim = climatology.at_hours(times_to_hours(times)).astype(np.float64)
    std = values.std(axis=(0, 2, 3))[None, :, None, None]
    weights = latitude_weights(rest["lat"].values)[None, None, :, None]
    damped, persistence = [], []
    for steps in LEADS:
        inits = window_starts(times, target_steps=steps, use_history=False)
        truth = values[inits + steps]
        forecast = clim[inits + steps] + keep[None] ** steps * (values[inits] - clim[inits])
        for out, guess in ((damped, forecast), (persistence, values[inits])):
            out.append(float(np.mean(np.sqrt((weights * ((guess - truth) / std) ** 2).mean(axis=(0, 2, 3))))))
    return damped, persistence


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of steps of each read the check makes."""
    counts: list[int] = []
    steps_of = prior_check._steps

    def counted(data: xr.DataArray, indices: np.ndarray) -> np.ndarray:
        counts.append(int(np.asarray(indices).size))
        return steps_of(data, indices)

    monkeypatch.setattr(prior_check, "_steps", counted)
    return counts


def test_streamed_check_matches_scoring_the_held_out_third_whole(
    reads: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    array = _array()
    # chunks of 16 inits: 16 states and 16 truths of 2 x 6 x 8 float64
    monkeypatch.setattr(prior_check, "CHUNK_BYTES", 16 * 2 * 8 * 2 * 6 * 8)
    assert prior_check.chunk_inits(array) == 16
    check = prior_check.check_prior(array, annual=0, diurnal=2, lead_steps=LEADS)
    damped, persistence = _reference(array)
    assert check is not None
    np.testing.assert_allclose(check.candidates["damped"], damped, rtol=1e-9)
    np.testing.assert_allclose(check.persistence, persistence, rtol=1e-9)
    assert check.best == "damped"  # AR(1) anomalies: damping toward the climatology beats persistence
    # 200 held-out steps, read in chunks: never more than a chunk of inits at a time
    assert max(reads) <= 16 and sum(reads) > 200


def test_long_periods_are_sampled(reads: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    array = _array(steps=600)
    full = prior_check.check_prior(array, annual=0, diurnal=2, lead_steps=LEADS)
    monkeypatch.setattr(prior_check, "MAX_STEPS", 64)
    reads.clear()
    sampled = prior_check.check_prior(array, annual=0, diurnal=2, lead_steps=LEADS)
    assert full is not None and sampled is not None
    # std from 64 steps, 64 inits per lead (read twice: now and truth)
    assert sum(reads) == 64 + 2 * 64 * len(LEADS)
    # a sample of a third of the inits tells the same story within a few percent
    np.testing.assert_allclose(sampled.candidates["damped"], full.candidates["damped"], rtol=0.1)
    assert sampled.best == full.best == "damped"
