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
