"""The out-of-sample climatology correction: its fit, the offsets it gives, and the stepper using them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

from fno_forecast.climatology import cross_validation_split, fit_climatology
from fno_forecast.data.timeaxis import times_to_hours
from fno_forecast.models.stepper import Stepper
from fno_forecast.recent_anomaly import (
    RecentAnomalyCorrection,
    fit_recent_anomaly_correction,
    offsets_at,
    recent_anomaly_offsets,
)
from tests.fixtures.networks import Constant

LAT = np.linspace(60.0, 30.0, 6)
LON = np.linspace(200.0, 230.0, 8)


def _series(*, shift: float, noise: float, seed: int = 0, n_steps: int = 4 * 540) -> xr.DataArray:
    """18 months of 6-hourly data: an annual cycle, noise, and from month 12 on a constant `shift`."""
    rng = np.random.default_rng(seed)
    times = np.datetime64("2013-01-01", "ns") + np.arange(n_steps) * np.timedelta64(6, "h")
    hours = np.arange(n_steps) * 6.0
    annual = 10.0 * np.sin(2 * np.pi * hours / (365.2425 * 24))[:, None, None, None]
    values = 280.0 + annual + rng.normal(0.0, noise, (n_steps, 1, LAT.size, LON.size))
    values[2 * n_steps // 3 :] += shift
    return xr.DataArray(
        values.astype(np.float32),
        dims=("time", "channel", "lat", "lon"),
        coords={"time": times, "channel": ["air"], "lat": LAT, "lon": LON},
    )


def test_a_persistent_held_out_anomaly_is_learned_and_long_windows_rank_first() -> None:
    array = _series(shift=2.0, noise=1.0)
    climatology = fit_climatology(array, annual=1, diurnal=0)
    correction = fit_recent_anomaly_correction(
        array, climatology, step_hours=6.0, window_days=(1.0, 7.0, 21.0)
    )
    assert correction is not None
    coefficients = [c[0] for c in correction.coefficients]
    # Noise of variance 1 averaged over n steps against a shift of 2: c ~ 4 / (4 + 1/n), but the
    # held-out climatology's own error blurs it; the long window must come out near 1.
    assert coefficients[2] > 0.8
    assert coefficients[0] < coefficients[1] < coefficients[2] + 1e-6
    assert correction.ranked_windows()[0] == 2
    assert min(correction.heldout_rmse) < 0.8 * correction.climatology_rmse
    assert correction.held_out.startswith("2013-12")


def test_white_noise_gives_no_useful_window() -> None:
    array = _series(shift=0.0, noise=1.0, seed=3)
    climatology = fit_climatology(array, annual=1, diurnal=0)
    correction = fit_recent_anomaly_correction(array, climatology, step_hours=6.0)
    assert correction is not None
    assert max(c[0] for c in correction.coefficients) < 0.15
    assert min(correction.heldout_rmse) > 0.98 * correction.climatology_rmse


def test_a_year_of_white_noise_holds_out_only_what_its_climatology_covers() -> None:
    """Three annual harmonics fitted on the first two thirds of one year run free through the last four
    months: their error there is a large anomaly that persists, and a correction fitted on it would be
    near 1. Held out only past 11 months, the fit covers the cycle and the noise persists not at all."""
    array = _series(shift=0.0, noise=1.0, seed=7, n_steps=4 * 365)
    hours = times_to_hours(array["time"].values)
    assert int(round(len(hours) * 2 / 3)) < cross_validation_split(hours, annual=3)
    assert cross_validation_split(hours, annual=0) == int(round(len(hours) * 2 / 3))
    assert hours[cross_validation_split(hours, annual=3)] - hours[0] >= 334 * 24.0
    climatology = fit_climatology(array, annual=3, diurnal=0)
    correction = fit_recent_anomaly_correction(
        array, climatology, step_hours=6.0, window_days=(1.0, 3.0, 7.0)
    )
    assert correction is not None
    assert correction.held_out.startswith("2013-12")
    # held out from 2013-09 on instead, the harmonics' error there persists: a coefficient near 1 and a
    # held-out error well under the climatology's, which these assertions rule out
    assert correction.climatology_rmse < 1.05  # the noise's 1 and little else
    assert max(c[0] for c in correction.coefficients) < 0.5
    assert min(correction.heldout_rmse) > 0.99 * correction.climatology_rmse


def test_too_short_a_training_period_fits_nothing() -> None:
    array = _series(shift=0.0, noise=1.0).isel(time=slice(0, 200))
    climatology = fit_climatology(array, annual=1, diurnal=0)
    assert fit_recent_anomaly_correction(array, climatology, step_hours=6.0) is None


def _correction() -> RecentAnomalyCorrection:
    return RecentAnomalyCorrection(
        window_days=(1.0, 3.0),
        coefficients=((0.5,), (0.25,)),
        heldout_rmse=(1.0, 0.9),
        climatology_rmse=1.2,
        fitted_on="a",
        held_out="b",
    )


def test_offsets_use_the_best_window_the_history_covers() -> None:
    array = _series(shift=0.0, noise=0.0).isel(time=slice(0, 40))
    climatology = fit_climatology(_series(shift=0.0, noise=0.0), annual=1, diurnal=0)
    block = array.values + 1.0  # an anomaly of exactly +1 everywhere
    hours = times_to_hours(array["time"].values)
    offsets, used = recent_anomaly_offsets(
        _correction(),
        climatology=climatology,
        block=block,
        block_hours=hours,
        init_positions=np.array([0, 5, 20]),
        step_hours=6.0,
    )
    # Position 0 has no history, 5 covers one day (4 steps) only, 20 covers three days (12 steps).
    assert used == [0.0, 1.0, 3.0]
    np.testing.assert_allclose(offsets[0], 0.0)
    np.testing.assert_allclose(offsets[1], 0.5, atol=1e-4)
    np.testing.assert_allclose(offsets[2], 0.25, atol=1e-4)
    gappy = hours.copy()
    gappy[15] += 6.0
    _, used = recent_anomaly_offsets(
        _correction(),
        climatology=climatology,
        block=block,
        block_hours=gappy,
        init_positions=np.array([20]),
        step_hours=6.0,
    )
    assert used == [1.0]  # the gap breaks the three-day window, the one-day window is intact


def test_offsets_read_in_bounded_blocks_match_one_read_of_the_whole_span() -> None:
    array = _series(shift=1.5, noise=1.0, seed=5).isel(time=slice(0, 200))
    climatology = fit_climatology(_series(shift=0.0, noise=0.0), annual=1, diurnal=0)
    positions = np.array([150, 3, 40, 41, 90, 199, 7])  # unsorted, close and far apart
    hours = times_to_hours(array["time"].values)
    whole, whole_used = recent_anomaly_offsets(
        _correction(),
        climatology=climatology,
        block=array.values,
        block_hours=hours,
        init_positions=positions,
        step_hours=6.0,
    )
    frame = 4 * LAT.size * LON.size
    for budget in (frame, 20 * frame, 10**9):  # one init per read, a few per read, all in one read
        offsets, used = offsets_at(
            _correction(),
            climatology=climatology,
            array=array,
            positions=positions,
            step_hours=6.0,
            budget_bytes=budget,
        )
        assert used == whole_used == [3.0, 1.0, 3.0, 3.0, 3.0, 3.0, 1.0]
        np.testing.assert_allclose(offsets, whole, rtol=1e-6)
    # history cut to 5 steps: only the one-day window (4 steps) fits, as from 5 served steps
    limited, used = offsets_at(
        _correction(),
        climatology=climatology,
        array=array,
        positions=positions,
        step_hours=6.0,
        history_steps=5,
    )
    assert used == [1.0] * 7
    one_day, _ = recent_anomaly_offsets(
        _correction(),
        climatology=climatology,
        block=array.values[146:151],
        block_hours=hours[146:151],
        init_positions=np.array([4]),
        step_hours=6.0,
    )
    np.testing.assert_allclose(limited[0], one_day[0], rtol=1e-6)
    assert np.abs(limited[0] - whole[0]).max() > 1e-3  # the cut history changes the offset


def test_correction_round_trips_and_rejects_ragged_lists() -> None:
    correction = _correction()
    assert RecentAnomalyCorrection.from_dict(correction.to_dict()) == correction
    broken = correction.to_dict() | {"heldout_rmse": [1.0]}
    with pytest.raises(ValueError, match="differ in length"):
        RecentAnomalyCorrection.from_dict(broken)


def test_a_relaxing_stepper_tends_to_the_offset_climatology() -> None:
    climatology = fit_climatology(_series(shift=0.0, noise=0.5), annual=1, diurnal=0)
    stepper = Stepper(
        Constant([0.0]),
        mean=np.array([280.0]),
        std=np.array([10.0]),
        tendency_std=np.array([1.0]),
        lat=LAT,
        lon=LON,
        step_hours=6.0,
        use_history=False,
        climatology=climatology.coefficients,
        climatology_annual=1,
        relaxation=np.full((1, LAT.size, LON.size), 0.2, dtype=np.float32),
    )
    hours = torch.tensor([times_to_hours(np.array(["2014-03-01"], dtype="datetime64[h]"))[0]])
    start = stepper.climatology_at(hours) + 5.0
    offset = torch.full_like(start, 1.5)
    results = {}
    for name, extra in (("plain", {}), ("offset", {"climatology_offset": offset})):
        state, time = start, hours.clone()
        with torch.no_grad():
            for _ in range(60):
                state = stepper(state, time_hours=time, **extra)
                time = time + 6.0
        results[name] = (state - stepper.climatology_at(time)).mean().item()
    assert results["plain"] == pytest.approx(0.0, abs=1e-3)
    assert results["offset"] == pytest.approx(1.5, abs=1e-3)
