"""Short hourly data (the issue's case): a climatology that stays in range, a prior checked out of sample."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from data.make_synthetic import make_hourly, write_atomic
from fno_forecast.climatology import fit_climatology
from fno_forecast.data.timeaxis import select_period, times_to_hours
from fno_forecast.training.config import load_config_and_keys
from fno_forecast.training.data_setup import load_training_data

TRAIN, VAL, FOLLOWING = "2021-06-01/2021-06-21", "2021-06-22/2021-06-24", "2021-06-22/2021-06-28"


@pytest.fixture(scope="module")
def hourly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_atomic(make_hourly(days=28, nlat=8, nlon=12), tmp_path_factory.mktemp("hourly") / "t2m.nc")


def _outside_training_range(climatology, data) -> float:
    """How far (K) the climatology of the following week goes outside the training min..max, per point."""
    train = select_period(data.array, TRAIN).values
    following = select_period(data.array, FOLLOWING)
    clim = climatology.at_hours(times_to_hours(following["time"].values))
    low, high = train.min(axis=0), train.max(axis=0)
    return float(np.max(np.maximum(clim - high, 0) + np.maximum(low - clim, 0)))


def test_the_derived_climatology_stays_in_the_training_range(hourly: Path) -> None:
    config, keys = load_config_and_keys(None, overrides={"train_period": TRAIN, "val_period": VAL})
    data = load_training_data(str(hourly), config, explicit=keys)
    assert (data.climatology.annual, data.climatology.diurnal) == (0, 4)
    assert _outside_training_range(data.climatology, data) == 0.0
    # the old fixed default (3 annual + 2 diurnal harmonics) extrapolates far outside it on 3 weeks
    old = fit_climatology(select_period(data.array, TRAIN), annual=3, diurnal=2)
    assert _outside_training_range(old, data) > 5.0


def test_the_prior_is_kept_where_it_beats_persistence_and_says_why(hourly: Path) -> None:
    config, keys = load_config_and_keys(None, overrides={"train_period": TRAIN, "val_period": VAL})
    data = load_training_data(str(hourly), config, explicit=keys)
    relaxation = data.corrections["relaxation"]
    assert relaxation["kept"] is True and data.relaxation is not None
    assert "prior vs persistence" in relaxation["why"] and "mean ratio 0." in relaxation["why"]
    # the recent-anomaly windows and target follow the data: 1-2 day windows for the 12-24 h leads
    assert data.recent_anomaly is not None and data.recent_anomaly.window_days == (1.0, 2.0)
    assert data.recent_anomaly.target_hours == (12.0, 24.0)
    assert data.corrections["recent_anomaly"]["kept"] is True


def test_the_network_never_trains_on_the_held_out_tail_the_calibration_is_fitted_on(hourly: Path) -> None:
    from fno_forecast.training.data_setup import WindowCache

    config, keys = load_config_and_keys(None, overrides={"train_period": TRAIN, "val_period": VAL})
    data = load_training_data(str(hourly), config, explicit=keys)
    # 21 days of hourly steps: the last 76 of 504 (15%, at least 24 + 32) are held out
    assert data.config is not None and abs(data.config.calibration_holdout - 76 / 504) < 1e-3
    assert data.holdout_period == "2021-06-18T20:00:00/2021-06-21T23:00:00"
    assert data.network_period == "2021-06-01T00:00:00/2021-06-18T19:00:00"
    windows = WindowCache(data, use_history=True)
    times = data.array["time"].values
    held_out_start = np.datetime64("2021-06-18T20:00:00")
    for steps in (1, 16):
        train = windows.train(steps)
        assert times[train.starts[-1] + steps] < held_out_start  # no target inside the tail
    tail = windows.holdout(24)
    assert tail is not None and times[tail.starts[0]] >= held_out_start  # every init and target inside it
    assert windows.holdout(200) is None  # no window of 200 steps fits a 76-step tail
