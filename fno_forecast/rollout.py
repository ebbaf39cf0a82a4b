"""Autoregressive rollout of a `Stepper`: feed each prediction back as the next input.

The one rollout of the house. Training unrolls K steps with gradients (`Unroller`, optionally with
activation checkpointing), validation and the lead-calibration fit roll out batches of windows
(`rollout_windows`), and forecasts and scoring roll out prepared initial states (`rollout`). Post-processing
of what a rollout yields (the per-lead calibration) lives in `fno_forecast.lead_calibration` and wraps the
iterator; it never changes the state fed back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.checkpoint import checkpoint as activation_checkpoint

from fno_forecast.data.windows import WindowDataset
from fno_forecast.errors import ForecastError
from fno_forecast.models.stepper import Stepper


def rollout(
    stepper: Stepper,
    state: torch.Tensor,
    *,
    time_hours: torch.Tensor,
    step_hours: float,
    n_steps: int,
    previous: torch.Tensor | None = None,
    check_finite: bool = True,
    climatology_offset: torch.Tensor | None = None,
    checkpointing: bool = False,
) -> Iterator[torch.Tensor]:
    """Yield `n_steps` successive states `(B, C, H, W)`, each `step_hours` after the one before.

    `state` is valid at `time_hours` (`(B,)` float64 hours since 1970); `previous` is the state one step
    earlier (history-using steppers take `state` itself when it is missing). Gradients flow through the
    whole rollout unless the caller runs it under `torch.no_grad()`; `checkpointing` recomputes each
    step's activations in the backward pass instead of keeping them (memory for K-step training).
    `climatology_offset` `(B, C, H, W)` is passed to every step (`fno_forecast.recent_anomaly`). With
    `check_finite`, a step that produces NaN or Inf raises `ForecastError` naming the step and its lead
    time, instead of silently yielding garbage.
    """
    if n_steps < 0:
        raise ForecastError(f"rollout: n_steps must be >= 0, got {n_steps}")
    hours = time_hours.to(torch.float64)
    current = state

    def step_once(x: torch.Tensor, at: torch.Tensor, before: torch.Tensor | None) -> torch.Tensor:
        return stepper(x, time_hours=at, previous=before, climatology_offset=climatology_offset)

    for step in range(1, n_steps + 1):
        if checkpointing and torch.is_grad_enabled():
            following = activation_checkpoint(step_once, current, hours, previous, use_reentrant=False)
        else:
            following = step_once(current, hours, previous)
        if check_finite and not bool(torch.isfinite(following).all()):
            raise ForecastError(
                f"rollout: step {step} (lead {step * step_hours:g} h) produced NaN or Inf values"
            )
        yield following
        previous, current = current, following
        hours = hours + step_hours


class Unroller(nn.Module):
    """K steps of a stepper as one module, so DDP sees one forward per backward. Out: `(B, K, C, H, W)`."""

    def __init__(self, stepper: Stepper, *, checkpointing: bool) -> None:
        super().__init__()
        self.stepper = stepper
        self.checkpointing = checkpointing

    def forward(
        self, state: torch.Tensor, time_hours: torch.Tensor, previous: torch.Tensor | None, n_steps: int
    ) -> torch.Tensor:
        steps = rollout(
            self.stepper,
            state,
            time_hours=time_hours,
            step_hours=self.stepper.step_hours,
            n_steps=n_steps,
            previous=previous,
            check_finite=False,
            checkpointing=self.checkpointing,
        )
        return torch.stack(list(steps), dim=1)


def rollout_windows(
    stepper: Stepper,
    dataset: WindowDataset,
    *,
    indices: Sequence[int] | np.ndarray,
    n_steps: int,
    batch_size: int,
    device: torch.device,
    autocast_dtype: torch.dtype | None = None,
    offsets_for: Callable[[list[int]], torch.Tensor | None] | None = None,
    targets: Sequence[int] | None = None,
) -> Iterator[tuple[dict[str, torch.Tensor], int, torch.Tensor]]:
    """Roll the stepper out from the windows `indices` of `dataset`, `batch_size` at a time.

    Yields `(batch, step, predicted)` for steps 1..n_steps of each batch, `batch` on `device` (`state`,
    `targets (B, K, C, H, W)`, `time_hours`, `previous` when the dataset has it, `climatology_offset`
    when `offsets_for(window_indices)` gives the recent-anomaly offsets to roll out with). With `targets`
    (steps) the batch holds only those targets, in that order (`WindowDataset.batch`). Call under
    no_grad.
    """
    for start in range(0, len(indices), batch_size):
        chosen = [int(i) for i in indices[start : start + batch_size]]
        batch = {key: value.to(device) for key, value in dataset.batch(chosen, targets=targets).items()}
        offset = None if offsets_for is None else offsets_for(chosen)
        if offset is not None:
            batch["climatology_offset"] = offset.to(device)
        with torch.autocast(
            device.type, dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None
        ):
            steps = rollout(
                stepper,
                batch["state"],
                time_hours=batch["time_hours"].double(),
                step_hours=stepper.step_hours,
                n_steps=n_steps,
                previous=batch.get("previous"),
                climatology_offset=batch.get("climatology_offset"),
            )
            for step, predicted in enumerate(steps, start=1):
                yield batch, step, predicted
