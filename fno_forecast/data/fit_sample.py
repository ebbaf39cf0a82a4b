"""What the setup fits read of a long training period: all of it, or evenly spread runs of it.

Statistics, the climatology and its harmonic counts, the damped prior's rates, the linear spectral prior
and the conservation check each read the training period, several of them more than once. On a record of
forty years on a global grid that is tens of gigabytes per read, so a training period larger than
`fit_sample_gb` (as float32) is represented by a sample: runs of consecutive steps (a day each, at least
`MIN_RUN_STEPS`, so every hour of the day and every one-step tendency is in it) spread evenly over the
whole period (so every season and every year is), as many as fit the budget and never fewer than
`MIN_SAMPLE_STEPS` steps. The sample is read once and held in memory when it fits `in_memory_bytes`,
else the fits stream it as they stream the period. A period within the budget is used whole, so small
sets fit exactly as before.

What a sample costs: the fits see fewer independent states. A harmonic climatology of `p` terms fitted on
`n` independent states has a sampling error of about `p / n` of the anomaly variance at each point, so
1,024 steps in 256 day-long runs fit an 11-term climatology to about 4% of the anomaly variance (2% in
RMSE) where forty years of every step fit it to about 0.1%; the per-channel statistics are unaffected in
any way that matters. Raise `fit_sample_gb` to trade setup time for that.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import xarray as xr

from fno_forecast.data.stats import frame_bytes
from fno_forecast.data.timeaxis import format_time
from fno_forecast.data.windows import read_steps

MIN_RUN_STEPS = 4
MIN_SAMPLE_STEPS = 1024


@dataclass(frozen=True)
class FitSample:
    """The array the setup fits read, and how it was drawn from the training period."""

    array: xr.DataArray
    steps: int  # time steps in the sample
    of_steps: int  # time steps in the training period
    runs: int  # runs of consecutive steps (0: the whole period)
    run_steps: int
    in_memory: bool

    @property
    def whole(self) -> bool:
        return self.runs == 0

    def describe(self) -> str:
        if self.whole:
            return f"the whole training period ({self.of_steps} steps)"
        where = "held in memory" if self.in_memory else "streamed by each fit"
        times = self.array["time"].values
        return (
            f"{self.runs} runs of {self.run_steps} consecutive steps spread evenly over the training period "
            f"({self.steps} of its {self.of_steps} steps, {format_time(times[0])} to "
            f"{format_time(times[-1])}, {where})"
        )


def run_starts(n_time: int, *, runs: int, run_steps: int) -> np.ndarray:
    """First steps of `runs` runs of `run_steps` spread evenly over `n_time` steps, first and last at the
    ends of the axis."""
    return np.linspace(0, n_time - run_steps, runs).round().astype(np.int64)


def draw_fit_sample(
    train_array: xr.DataArray,
    *,
    budget_bytes: int,
    steps_per_day: float,
    in_memory_bytes: int,
) -> FitSample:
    """The training array whole when it fits `budget_bytes` as float32, else a sample of it (module doc)."""
    n_time = train_array.sizes["time"]
    frame = frame_bytes(train_array)
    run_steps = max(MIN_RUN_STEPS, int(math.ceil(steps_per_day)))
    wanted = max(MIN_SAMPLE_STEPS, budget_bytes // frame)
    if n_time * frame <= budget_bytes or wanted >= n_time or n_time < 2 * run_steps:
        return FitSample(train_array, n_time, n_time, 0, 0, in_memory=False)
    runs = max(2, int(wanted // run_steps))
    starts = run_starts(n_time, runs=runs, run_steps=run_steps)
    steps = np.unique((starts[:, None] + np.arange(run_steps)[None, :]).ravel())
    sample = train_array.isel(time=steps)
    in_memory = steps.size * frame <= in_memory_bytes
    if in_memory:
        sample = sample.copy(data=read_steps(train_array, steps))
    return FitSample(sample, int(steps.size), n_time, runs, run_steps, in_memory=in_memory)
