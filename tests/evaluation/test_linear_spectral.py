"""The linear spectral baseline learns the linear dynamics of small-amplitude shallow-water flow."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from fno_forecast.climatology import fit_climatology
from fno_forecast.data.channels import to_channels
from fno_forecast.data.grid import weighted_rmse_2d
from fno_forecast.data.timeaxis import times_to_hours
from fno_forecast.models.linear_spectral import fit_linear_spectral, sphere_with_poles
from tests.fixtures.data import load_make_swe

REPO = Path(__file__).resolve().parents[2]
STEPS = 40
TRAJECTORIES = 5


@pytest.fixture(scope="module")
def swe_small() -> xr.DataArray:
    module = load_make_swe()
    dataset = module.make_dataset(
        nlat=17, trajectories=TRAJECTORIES, steps=STEPS, gap_steps=4, amplitude=0.1, spinup_hours=24.0, seed=3
    )
    return to_channels(dataset, step_hours=6.0).array.load()


def _split(array: xr.DataArray) -> tuple[xr.DataArray, xr.DataArray]:
    """The first trajectories for fitting, the last one held out."""
    per_run = STEPS
    return array.isel(time=slice(0, per_run * (TRAJECTORIES - 1))), array.isel(time=slice(-per_run, None))


def _rmse(forecast: np.ndarray, truth: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Latitude-weighted RMSE per channel over all inits."""
    return np.array(
        [weighted_rmse_2d(forecast[:, c] - truth[:, c], lat) for c in range(truth.shape[1])], dtype=float
    )


@pytest.mark.parametrize("order", [1, 2])
def test_one_step_error_is_a_small_fraction_of_persistence(swe_small: xr.DataArray, order: int) -> None:
    train, held = _split(swe_small)
    climatology = fit_climatology(train, annual=0, diurnal=0)
    model = fit_linear_spectral(train, climatology, step_hours=6.0, order=order)
    assert model is not None
    assert model.degrees == 17 and model.pairs == (TRAJECTORIES - 1) * (STEPS - order)
    states = held.values
    lat = held["lat"].values
    hours = times_to_hours(held["time"].values)
    inits = np.arange(1, len(states) - 1)
    (one_step,) = model.rollout(
        states[inits], init_hours=hours[inits], step_hours=6.0, n_steps=1, previous=states[inits - 1]
    )
    skill = _rmse(one_step, states[inits + 1], lat)
    persistence = _rmse(states[inits], states[inits + 1], lat)
    assert np.all(skill < 0.05 * persistence), (skill, persistence)
    assert model.spectral_radius < 1.05


def test_rollout_stays_close_over_a_day_and_keeps_the_mean_height(swe_small: xr.DataArray) -> None:
    train, held = _split(swe_small)
    model = fit_linear_spectral(train, fit_climatology(train, annual=0, diurnal=0), step_hours=6.0)
    assert model is not None
    states = held.values
    lat = held["lat"].values
    hours = times_to_hours(held["time"].values)
    forecasts = list(model.rollout(states[:4], init_hours=hours[:4], step_hours=6.0, n_steps=4))
    skill = _rmse(forecasts[-1], states[4:8], lat)
    persistence = _rmse(states[:4], states[4:8], lat)
    assert np.all(skill < 0.2 * persistence), (skill, persistence)
    weights = np.cos(np.deg2rad(lat))[:, None]
    mean_height = (forecasts[-1][:, 0] * weights).sum(axis=(1, 2)) / (weights.sum() * states.shape[-1])
    truth_mean = (states[4:8, 0] * weights).sum(axis=(1, 2)) / (weights.sum() * states.shape[-1])
    np.testing.assert_allclose(mean_height, truth_mean, rtol=1e-3)


def test_only_global_grids_with_both_poles() -> None:
    lon = np.arange(16) * 22.5
    assert sphere_with_poles(np.linspace(90, -90, 9), lon)
    assert not sphere_with_poles(np.linspace(80, -80, 9), lon)  # no poles
    assert not sphere_with_poles(np.linspace(90, -90, 9), lon[:8])  # not global
    regional = xr.DataArray(
        np.zeros((30, 1, 9, 8), np.float32),
        dims=("time", "channel", "lat", "lon"),
        coords={
            "time": np.arange(30) * np.timedelta64(6, "h") + np.datetime64("2000-01-01"),
            "lat": np.linspace(90, -90, 9),
            "lon": lon[:8],
        },
    )
    climatology = fit_climatology(regional, annual=0, diurnal=0)
    assert fit_linear_spectral(regional, climatology, step_hours=6.0) is None


def test_evaluate_scores_it_on_a_global_grid(tmp_path: Path) -> None:
    from fno_forecast.cli import main as cli
    from fno_forecast.evaluation.scorecard import scorecard_from_dict
    from fno_forecast.output import write_forecast
    from tests.training.helpers import train_args

    module = load_make_swe()
    # 4 runs of 6 days, 1 day apart: 2000-01-01, -08, -15, -22; the last one is scored
    dataset = module.make_dataset(
        nlat=9, trajectories=4, steps=24, gap_steps=4, amplitude=0.1, spinup_hours=6.0
    )
    data = write_forecast(dataset, tmp_path / "swe.nc")
    out = tmp_path / "run"
    periods = ["--train-period", "2000-01-01/2000-01-14", "--val-period", "2000-01-15/2000-01-21"]
    # no conservation laws: the pole rows' fill would change the prior this compares with the baseline
    # (`tests/models/test_conservation.py` trains with them)
    no_laws = ("--set", "recent_anomaly=false", "--set", "conservation=[]")
    assert cli(train_args(data, out, *periods, *no_laws)) == 0
    stepper = json.loads((out / "model" / "model.json").read_text())["stepper"]
    assert stepper["prior"] == "linear_spectral"  # prior = auto picks it on this grid
    scores = tmp_path / "scores.json"
    args = [
        "evaluate",
        "--model",
        str(out / "model"),
        "--data",
        str(data),
        "--period",
        "2000-01-22/2000-01-31",
    ]
    assert cli([*args, "--leads", "6,24", "--json", str(scores)]) == 0
    card = scorecard_from_dict(json.loads(scores.read_text()))
    protocol = card.protocol["linear_spectral"]
    assert protocol["degrees"] == 9 and protocol["order"] == 1 and protocol["pairs"] == 2 * 23
    assert protocol["fitted_on"].endswith("2000-01-13T18:00") and protocol["spectral_radius"] < 1.05
    rows = [row for row in card.rows if row.metric == "rmse"]
    assert {row.variable for row in rows} == {"h", "u", "v"} and {row.lead_hours for row in rows} == {
        6.0,
        24.0,
    }
    for row in rows:
        spectral, persistence = row.others["linear_spectral"], row.persistence
        assert spectral < 0.25 * persistence, (row.lead_hours, spectral, persistence)
        # the bundle's own prior (its stepper without the network) is the baseline, fitted alike, at the
        # first step; later steps transform each state again (the baseline carries its coefficients)
        if row.lead_hours == 6.0:
            assert row.others["prior"] == pytest.approx(spectral, rel=1e-5)
        assert row.others["prior"] < 0.25 * persistence
