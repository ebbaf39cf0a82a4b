"""The moving-block bootstrap on series whose answer is known: AR(1) noise around a known mean."""

from __future__ import annotations

import numpy as np
import pytest

from fno_forecast.evaluation.bootstrap import (
    BootstrapConfig,
    block_indices,
    block_length,
    decorrelation_time,
    mean_interval,
)
from fno_forecast.evaluation.intervals import lead_intervals


def ar1(n: int, phi: float, rng: np.random.Generator) -> np.ndarray:
    """Stationary AR(1) noise of unit innovation variance."""
    out = np.empty(n)
    out[0] = rng.normal() / np.sqrt(1.0 - phi**2)
    for t in range(1, n):
        out[t] = phi * out[t - 1] + rng.normal()
    return out


def test_decorrelation_time_of_ar1_is_one_plus_phi_over_one_minus_phi():
    rng = np.random.default_rng(1)
    phi = 0.8  # integrated autocorrelation time (1 + phi) / (1 - phi) = 9
    taus = [decorrelation_time(ar1(4000, phi, rng)) for _ in range(10)]
    assert np.mean(taus) == pytest.approx(9.0, rel=0.2)
    assert decorrelation_time(rng.normal(size=4000)) < 1.2
    assert decorrelation_time(np.ones(50)) == 1.0


def test_a_diurnal_cycle_does_not_hide_the_decorrelation_time():
    rng = np.random.default_rng(7)
    n = 4000
    hour = (np.arange(n) % 4) * 6.0  # 6-hourly inits
    series = ar1(n, 0.8, rng) + 4.0 * np.cos(2 * np.pi * hour / 24.0)
    assert decorrelation_time(series) < 2.0  # the cycle turns the lag-1 autocorrelation negative
    assert decorrelation_time(series, phase=hour) == pytest.approx(9.0, rel=0.25)


def test_block_indices_are_runs_of_consecutive_inits():
    indices = block_indices(10, block=4, resamples=3, rng=np.random.default_rng(0))
    assert indices.shape == (3, 10) and indices.min() >= 0 and indices.max() <= 9
    for row in indices:
        for start in (0, 4):
            assert np.all(np.diff(row[start : start + 4]) == 1)


def test_interval_of_ar1_mean_covers_the_true_mean_at_about_95_percent():
    rng = np.random.default_rng(2)
    phi, n, mean = 0.8, 400, 3.0
    # the standard error of the mean of AR(1): sqrt(tau / n) * marginal std
    expected_width = 2 * 1.96 * np.sqrt(9.0 / n) / np.sqrt(1.0 - phi**2)
    covered, widths = 0, []
    config = BootstrapConfig(resamples=400, seed=3)
    trials = 150
    for _ in range(trials):
        series = mean + ar1(n, phi, rng)
        low, high = mean_interval(series, block=block_length(series), config=config)
        covered += low <= mean <= high
        widths.append(high - low)
    # block bootstraps undercover (about 0.84 here: the module docstring); far less than single inits
    assert 0.78 <= covered / trials <= 0.99
    assert np.median(widths) == pytest.approx(expected_width, rel=0.35)
    naive = [mean_interval(mean + ar1(n, phi, rng), block=1, config=config) for _ in range(30)]
    assert np.median([h - lo for lo, h in naive]) < 0.5 * expected_width  # what block length 1 would claim


def test_intervals_are_deterministic_given_the_seed_and_paired():
    rng = np.random.default_rng(4)
    n = 200
    noise = np.abs(ar1(n, 0.7, rng))[:, None] + 1.0
    per_init = {
        "model": {"rmse": noise, "acc": 0.5 + 0 * noise, "bias": noise - 1.0},
        "other": {"rmse": noise + 0.2, "acc": 0.4 + 0 * noise, "bias": noise - 1.0},
    }
    first = lead_intervals(per_init, lead_index=0, config=BootstrapConfig(resamples=200, seed=5))
    again = lead_intervals(per_init, lead_index=0, config=BootstrapConfig(resamples=200, seed=5))
    other_seed = lead_intervals(per_init, lead_index=0, config=BootstrapConfig(resamples=200, seed=6))
    np.testing.assert_array_equal(first.bounds["model"]["rmse"], again.bounds["model"]["rmse"])
    assert not np.array_equal(first.bounds["model"]["rmse"], other_seed.bounds["model"]["rmse"])
    # the MSE differs by a constant on every init: the paired difference is significant and tight,
    # though each system's own interval is wide and the two overlap
    rmse = first.versus["other"]["rmse"][0]
    assert rmse.significant and rmse.high < 0 and rmse.high - rmse.low < 0.05
    model_low, model_high = first.bounds["model"]["rmse"][:, 0]
    other_low, _ = first.bounds["other"]["rmse"][:, 0]
    assert other_low < model_high
    # identical bias series: a zero difference is not significant
    assert not first.versus["other"]["bias"][0].significant
    tau = first.difference_decorrelation["other"]
    assert first.decorrelation["model"] > 1.5 and first.blocks["model"] == int(
        np.ceil(first.decorrelation["model"])
    )
    assert np.isfinite(tau)
