"""The linear autoregressive baseline and the fold scoring, on data whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from fno_forecast.bundle import load_bundle
from fno_forecast.climatology import Climatology
from fno_forecast.errors import ConfigError
from fno_forecast.evaluation.folds import overlaps, parse_folds
from fno_forecast.evaluation.scoring import score_fold
from fno_forecast.linear_ar import fit_linear_ar, n_components_for
from tests.fixtures.bundle import tiny_state_array

LAT = np.linspace(60.0, 30.0, 6)
LON = np.linspace(200.0, 235.0, 8)


def damped_patterns(n_steps: int, *, phi: float, noise: float, seed: int) -> xr.DataArray:
    """Anomalies of three fixed spatial patterns, each an AR(1) with coefficient `phi`, plus white noise."""
    rng = np.random.default_rng(seed)
    patterns = rng.normal(size=(3, 1, len(LAT), len(LON)))
    amplitude = np.zeros((n_steps, 3))
    for t in range(1, n_steps):
        amplitude[t] = phi * amplitude[t - 1] + rng.normal(size=3)
    values = np.einsum("tk,kchw->tchw", amplitude, patterns)
    values += noise * rng.normal(size=values.shape)
    times = np.datetime64("2013-01-01", "ns") + np.arange(n_steps) * np.timedelta64(6, "h")
    return xr.DataArray(
        values.astype(np.float32),
        dims=("time", "channel", "lat", "lon"),
        coords={"time": times, "channel": ["x"], "lat": LAT, "lon": LON},
    )


def test_n_components_follow_the_data():
    assert n_components_for(points=1325, pairs=2187) == 150
    assert n_components_for(points=40, pairs=2187) == 40
    assert n_components_for(points=1325, pairs=300) == 30


def test_linear_ar_recovers_a_damped_pattern_process():
    phi = 0.9
    array = damped_patterns(3000, phi=phi, noise=0.01, seed=1)
    zero = Climatology(np.zeros((1, 1, len(LAT), len(LON)), dtype=np.float32), annual=0, diurnal=0)
    train = array.isel(time=slice(0, 2000))
    assert fit_linear_ar(train, zero, step_hours=6.0).n_components == min(150, 48, 1999 // 10)
    model = fit_linear_ar(train, zero, step_hours=6.0, n_components=3)  # the process has three patterns
    # the forecast of a pattern AR(1) from the true state is phi**k times the state
    test = array.isel(time=slice(2000, 2100)).values
    hours = np.arange(100) * 6.0
    forecasts = list(model.rollout(test, init_hours=hours, step_hours=6.0, n_steps=4))
    for k, forecast in enumerate(forecasts, start=1):
        error = np.sqrt(np.mean((forecast - phi**k * test) ** 2))
        # sampling error of the fitted map grows with k; persistence would be off by 0.1 at k = 1, 0.34 at 4
        assert error < 0.03 * k * np.sqrt(np.mean(test**2)), k


def test_linear_ar_needs_pairs():
    zero = Climatology(np.zeros((1, 1, len(LAT), len(LON)), dtype=np.float32), annual=0, diurnal=0)
    assert fit_linear_ar(damped_patterns(15, phi=0.5, noise=0.1, seed=0), zero, step_hours=6.0) is None


def test_parse_folds_and_overlap():
    assert parse_folds("2014-01-01/2014-03-31, 2014-04-01/2014-06-30") == (
        "2014-01-01/2014-03-31",
        "2014-04-01/2014-06-30",
    )
    with pytest.raises(ConfigError, match="--folds"):
        parse_folds("2014-01")
    assert overlaps("2013-01-01/2014-06-30", "2014-04-01/2014-06-30")
    assert not overlaps("2013-01-01/2014-06-30", "2014-07-01/2014-09-30")


def test_a_fold_inside_the_training_period_says_it_is_in_sample(tiny_bundle):
    bundle = load_bundle(tiny_bundle)  # trained on 2013-01-01/2013-12-31
    array = tiny_state_array(n_steps=4 * 400, start="2013-01-01", seed=3)
    inside = score_fold(bundle, array, fold="2013-12-01/2013-12-10", leads=(6, 24), bootstrap=None)
    outside = score_fold(bundle, array, fold="2014-01-11/2014-01-20", leads=(6, 24), bootstrap=None)
    assert inside.protocol["in_sample"] is True and "in-sample" in inside.protocol["notes"][-1]
    assert "in_sample" not in outside.protocol
    for card in (inside, outside):
        assert card.protocol["verify_inside"] is True
        assert card.protocol["inits_per_lead"] == {"6": 39, "24": 36}
    # the linear baseline is fitted on the training period up to the fold's start only
    assert inside.protocol["linear_ar"]["fitted_on"].endswith("2013-11-30T18:00")
    assert outside.protocol["linear_ar"]["fitted_on"].endswith("2013-12-31T18:00")
