"""Monthly data through scoring: calendar months differ in length, verifying times still match."""

from __future__ import annotations

import numpy as np

from fno_forecast.data.timeaxis import HOURS_PER_MONTH, times_to_hours
from fno_forecast.evaluation.scoring import verifiable_inits


def test_monthly_inits_find_their_verifying_months() -> None:
    times = np.arange(np.datetime64("2000-01", "M"), np.datetime64("2004-01", "M")).astype("datetime64[ns]")
    hours = times_to_hours(times)
    in_period = np.zeros(len(times), dtype=bool)
    in_period[12:24] = True  # inits in 2001
    inits, verify, previous = verifiable_inits(
        hours, in_period=in_period, steps=[1, 3, 6], step_hours=HOURS_PER_MONTH, use_history=True
    )
    assert inits.tolist() == list(range(12, 24))
    assert (verify == inits[:, None] + np.array([1, 3, 6])[None, :]).all()
    assert previous is not None and (previous == inits - 1).all()


def test_calendar_months_are_regular_steps_and_a_missing_month_is_not() -> None:
    from fno_forecast.data.timeaxis import regular_hours

    months = np.arange(np.datetime64("2000-01", "M"), np.datetime64("2002-01", "M")).astype("datetime64[ns]")
    hours = times_to_hours(months)
    assert regular_hours(hours, HOURS_PER_MONTH)  # 28 to 31 days apart
    assert not regular_hours(np.delete(hours, 5), HOURS_PER_MONTH)  # a month missing
    assert regular_hours(hours[::3], 3 * HOURS_PER_MONTH) and not regular_hours(hours[::3], HOURS_PER_MONTH)
    six_hourly = np.arange(0.0, 48.0, 6.0)
    assert regular_hours(six_hourly, 6.0) and not regular_hours(np.delete(six_hourly, 2), 6.0)


def test_the_recent_anomaly_on_monthly_data_fits_windows_of_months(tmp_path) -> None:
    """A slow mode (ENSO-like) persists for seasons: on monthly data the correction is fitted on windows
    of 1 to 12 months (windows of days would all be one step) and kept where it beats the climatology."""
    from data.make_synthetic import make_monthly, write_atomic
    from fno_forecast.recent_anomaly import window_text
    from fno_forecast.training.config import load_config_and_keys
    from fno_forecast.training.data_setup import load_training_data

    path = write_atomic(make_monthly(years=16, res=30.0), tmp_path / "monthly.nc")
    overrides = {"train_period": "1981-01-01/1994-12-31", "val_period": "1995-01-01/1996-12-31"}
    config, keys = load_config_and_keys(None, overrides=overrides)
    data = load_training_data(str(path), config, explicit=keys)
    recent = data.recent_anomaly
    assert recent is not None and data.corrections["recent_anomaly"]["kept"] is True
    assert [window_text(d) for d in recent.window_days] == [
        "1-month",
        "2-month",
        "3-month",
        "6-month",
        "12-month",
    ]
    best = recent.ranked_windows()[0]
    assert recent.heldout_rmse[best] < recent.climatology_rmse
    assert "-month window: held-out RMSE" in data.corrections["recent_anomaly"]["why"]
