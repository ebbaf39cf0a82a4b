"""Fit the lead calibration of a trained stepper as it will be applied: out of sample, corrections on.

The network never trains on the training period's held-out tail (`data_setup.split_holdout`), so the
calibration fitted there sees the network's out-of-sample errors, not the smaller errors of windows it
has learned. Each init is rolled out with the recent-anomaly offset that a served forecast from it would
use (computed from the steps before it, `fno_forecast.recent_anomaly.recent_anomaly_offsets`). Without a
held-out tail (a training period too short to spare one, or `calibration_holdout = 0`) only the factor
`a` is fitted, on the network's own windows, and the calibration says so (`held_out = false`): the
prior's weight `b` fitted in sample trusts errors the network has learned away (on a 6-day hourly set it
made the 24 h forecast 25% worse than persistence), while the single factor mostly corrects the prior's
damping, which a short training period barely changes.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from fno_forecast.data.timeaxis import times_to_hours
from fno_forecast.data.windows import WindowDataset
from fno_forecast.lead_calibration import LeadCalibration, fit_lead_calibration
from fno_forecast.models.stepper import Stepper
from fno_forecast.recent_anomaly import longest_window_steps, recent_anomaly_offsets
from fno_forecast.training.config import TrainConfig
from fno_forecast.training.data_setup import TrainingData, WindowCache


def offsets_reader(data: TrainingData, dataset: WindowDataset) -> Callable[[list[int]], torch.Tensor | None]:
    """`offsets_for(window_indices)`: the recent-anomaly offsets of those windows' inits, read from the
    steps before each init (only the span a batch needs is read, so a streamed store stays streamed)."""
    correction = data.recent_anomaly
    starts = dataset.starts
    times = data.array["time"].values
    reach = longest_window_steps(correction, data.step_hours)

    def offsets_for(indices: list[int]) -> torch.Tensor | None:
        if correction is None or not indices:
            return None
        positions = starts[np.asarray(indices, dtype=np.int64)]
        lo, hi = max(0, int(positions.min()) - reach), int(positions.max()) + 1
        block = np.asarray(data.array.isel(time=slice(lo, hi)).values, dtype=np.float32)
        offsets, _ = recent_anomaly_offsets(
            correction,
            climatology=data.climatology,
            block=block,
            block_hours=times_to_hours(times[lo:hi]),
            init_positions=positions - lo,
            step_hours=data.step_hours,
        )
        return torch.from_numpy(offsets)

    return offsets_for


def fit_calibration(
    stepper: Stepper,
    *,
    data: TrainingData,
    windows: WindowCache,
    config: TrainConfig,
    lead_steps: tuple[int, ...],
    lat_weights: torch.Tensor,
    device: torch.device,
) -> LeadCalibration | None:
    """The trained stepper's lead calibration, fitted on the held-out tail (factors alone without one)."""
    if not config.lead_calibration:
        return None
    steps = max(lead_steps)
    dataset = windows.holdout(steps)
    held_out = dataset is not None
    if dataset is None:
        dataset = windows.train(steps)
    return fit_lead_calibration(
        stepper,
        dataset,
        n_steps=steps,
        lat_weights=lat_weights,
        init_stride=config.calibration_init_stride,
        batch_size=config.val_batch_size,
        device=device,
        period=data.holdout_period if held_out else data.network_period or data.train_period,
        held_out=held_out,
        use_prior=held_out,
        offsets_for=offsets_reader(data, dataset) if held_out and data.recent_anomaly is not None else None,
    )
