"""A long training period is fitted on evenly spread runs of it: bounded reads, the same fits within noise."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from data.make_synthetic import make_daily, write_atomic
from fno_forecast.data.channels import open_channels
from fno_forecast.data.fit_sample import MIN_SAMPLE_STEPS, draw_fit_sample
from fno_forecast.data.timeaxis import select_period, times_to_hours
from fno_forecast.training.config import load_config_and_keys
from fno_forecast.training.data_setup import load_training_data

TRAIN, VAL = "2015-01-01/2021-12-31", "2022-01-01/2022-03-31"


@pytest.fixture(scope="module")
def daily(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Eight years of daily means on an 8 x 12 grid (2,557 training steps)."""
    out = tmp_path_factory.mktemp("daily") / "t2m.nc"
    return write_atomic(make_daily(years=8, nlat=8, nlon=12), out)


def test_a_period_within_the_budget_is_used_whole_and_a_longer_one_in_day_long_runs(daily: Path) -> None:
    train = select_period(open_channels(str(daily)).array, TRAIN)
    whole = draw_fit_sample(train, budget_bytes=2**30, steps_per_day=1.0, in_memory_bytes=2**30)
    assert whole.whole and whole.array is train and whole.describe().startswith("the whole training period")
    sample = draw_fit_sample(train, budget_bytes=1024, steps_per_day=1.0, in_memory_bytes=2**30)
    assert (sample.runs, sample.run_steps, sample.steps, sample.of_steps) == (256, 4, 1024, 2557)
    assert sample.steps == MIN_SAMPLE_STEPS  # never fewer, whatever the budget
    hours = times_to_hours(sample.array["time"].values)
    gaps = np.diff(hours) != 24.0
    assert gaps.sum() == 255 and np.all(np.diff(hours) > 0)  # 256 runs, in time order
    assert hours[0] == times_to_hours(train["time"].values[:1])[0]  # from the first step ...
    assert hours[-1] == times_to_hours(train["time"].values[-1:])[0]  # ... to the last
    days_of_year = ((hours - hours[0]) / 24.0) % 365.25
    assert np.histogram(days_of_year, bins=12, range=(0, 365.25))[0].min() >= 60  # every season
    assert sample.in_memory and sample.array.variable._in_memory
    assert "256 runs of 4 consecutive steps" in sample.describe()
    streamed = draw_fit_sample(train, budget_bytes=1024, steps_per_day=1.0, in_memory_bytes=1024)
    assert not streamed.in_memory and "streamed by each fit" in streamed.describe()


def test_the_setup_fitted_on_a_sample_matches_the_whole_fit_within_its_noise(daily: Path) -> None:
    config, keys = load_config_and_keys(None, overrides={"train_period": TRAIN, "val_period": VAL})
    whole = load_training_data(str(daily), config, explicit=keys)
    sampled = load_training_data(str(daily), replace(config, fit_sample_gb=1e-6), explicit=keys)
    said = {c.key: c.why for c in sampled.choices}["fit_sample_gb"]
    assert "256 runs of 4 consecutive steps" in said and "1024 of its 2557 steps" in said
    assert "the whole training period (2557 steps)" in {c.key: c.why for c in whole.choices}["fit_sample_gb"]
    np.testing.assert_allclose(sampled.stats.mean, whole.stats.mean, rtol=1e-4)
    np.testing.assert_allclose(sampled.stats.std, whole.stats.std, rtol=0.05)
    np.testing.assert_allclose(sampled.stats.tendency_std, whole.stats.tendency_std, rtol=0.05)
    # the same harmonic counts, and a climatology that differs by a small part of the anomaly spread
    assert (sampled.climatology.annual, sampled.climatology.diurnal) == (
        whole.climatology.annual,
        whole.climatology.diurnal,
    )
    train = select_period(whole.array, TRAIN)
    hours = times_to_hours(train["time"].values)
    spread = float((train.values - whole.climatology.at_hours(hours)).std())
    difference = float(
        np.sqrt(np.mean((sampled.climatology.at_hours(hours) - whole.climatology.at_hours(hours)) ** 2))
    )
    assert difference < 0.1 * spread  # 0.17 K against 3.3 K here
    # the prior and the recent-anomaly correction are still checked out of sample, not given up on
    assert "prior vs persistence" in sampled.corrections["relaxation"]["why"]
    assert sampled.relaxation is not None and whole.relaxation is not None
    assert abs(float(sampled.relaxation.mean()) - float(whole.relaxation.mean())) < 0.05
    assert sampled.recent_anomaly is not None and whole.recent_anomaly is not None
    assert sampled.recent_anomaly.held_out == whole.recent_anomaly.held_out  # 853 steps, under the cap
    assert sampled.corrections["recent_anomaly"]["kept"] == whole.corrections["recent_anomaly"]["kept"]
