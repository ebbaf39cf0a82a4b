"""Validation: roll the model out from every validation init and score each lead in physical units.

The score per lead and channel is the lat-weighted RMSE (square root of the time mean of the cos(lat)
weighted spatial MSE), as in the baselines of the data notes. Inits are those whose whole rollout to the
longest lead lies inside the validation period, so no validation target reaches into later data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from fno_forecast.data.windows import WindowDataset
from fno_forecast.models.stepper import Stepper
from fno_forecast.rollout import rollout_windows
from fno_forecast.training.distributed import DistInfo, all_reduce_sum
from fno_forecast.training.loss import weighted_squared_error_sums


@dataclass(frozen=True)
class ValidationResult:
    """`rmse[lead_hours][channel]` in physical units, the number of inits, and a scalar selection score."""

    rmse: dict[str, dict[str, float]]
    n_inits: int
    score: float

    def summary(self, channel: str | None = None) -> str:
        """`6h 1.23 | 24h 1.80 ...` for one channel (the first by default)."""
        parts = []
        for lead, values in self.rmse.items():
            name = channel or next(iter(values))
            parts.append(f"{lead}h {values[name]:.3f}")
        return " | ".join(parts)


@torch.no_grad()
def validate(
    stepper: Stepper,
    dataset: WindowDataset,
    *,
    lead_steps: tuple[int, ...],
    step_hours: float,
    channel_names: tuple[str, ...],
    lat_weights: torch.Tensor,
    batch_size: int,
    init_stride: int,
    device: torch.device,
    dist_info: DistInfo,
    autocast_dtype: torch.dtype | None = None,
) -> ValidationResult:
    """Score `stepper` on `dataset` (whose `target_steps` is at least the longest lead)."""
    was_training = stepper.training
    stepper.eval()
    indices = np.arange(0, len(dataset), init_stride)[dist_info.rank :: dist_info.world_size]
    n_leads, n_channels = len(lead_steps), len(channel_names)
    sums = torch.zeros(n_leads, n_channels, dtype=torch.float64, device=device)
    count = torch.zeros(1, dtype=torch.float64, device=device)
    wanted = {step: i for i, step in enumerate(lead_steps)}
    weights = lat_weights.to(device)
    for batch, step, predicted in rollout_windows(
        stepper,
        dataset,
        indices=indices,
        n_steps=max(lead_steps),
        batch_size=batch_size,
        device=device,
        autocast_dtype=autocast_dtype,
        targets=lead_steps,  # the verifying states only: 5 of a 10-day window's 40 on a 6-hourly grid
    ):
        if step in wanted:
            sums[wanted[step]] += weighted_squared_error_sums(
                predicted, batch["targets"][:, wanted[step]], lat_weights=weights
            )
        if step == 1:
            count += batch["state"].shape[0]
    all_reduce_sum(sums, dist_info)
    all_reduce_sum(count, dist_info)
    stepper.train(was_training)
    mse = (sums / count.clamp(min=1)).cpu().numpy()
    rmse = np.sqrt(mse)
    table = {
        f"{lead_steps[i] * step_hours:g}": {name: float(rmse[i, c]) for c, name in enumerate(channel_names)}
        for i in range(n_leads)
    }
    std = stepper.std.detach().reshape(-1).double().cpu().numpy()
    score = float(np.mean(rmse / std[None, :]))
    return ValidationResult(rmse=table, n_inits=int(count.item()), score=score)
