"""Autoregressive rollout of a `Stepper`: feed each prediction back as the next input."""

from __future__ import annotations

from collections.abc import Iterator

import torch

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
    lead_factors: torch.Tensor | None = None,
) -> Iterator[torch.Tensor]:
    """Yield `n_steps` successive states `(B, C, H, W)`, each `step_hours` after the one before.

    `state` is valid at `time_hours` (`(B,)` float64 hours since 1970); `previous` is the state one step
    earlier (history-using steppers take `state` itself when it is missing). Gradients flow through the
    whole rollout unless the caller runs it under `torch.no_grad()`. `climatology_offset` `(B, C, H, W)`
    is passed to every step (`fno_forecast.recent_anomaly`). `lead_factors` `(K, C)` scale what is
    yielded at step k about the (offset) climatology (`fno_forecast.lead_calibration`); the state fed
    back stays the stepper's own. A step that produces NaN or Inf raises `ForecastError` naming the
    step and its lead time, instead of silently yielding garbage.
    """
    if n_steps < 0:
        raise ForecastError(f"rollout: n_steps must be >= 0, got {n_steps}")
    hours = time_hours.to(torch.float64)
    current = state
    for step in range(1, n_steps + 1):
        following = stepper(
            current, time_hours=hours, previous=previous, climatology_offset=climatology_offset
        )
        if check_finite and not bool(torch.isfinite(following).all()):
            raise ForecastError(
                f"rollout: step {step} (lead {step * step_hours:g} h) produced NaN or Inf values"
            )
        if lead_factors is None:
            yield following
        else:
            factor = lead_factors[min(step, lead_factors.shape[0]) - 1].view(1, -1, 1, 1)
            reference = stepper.climatology_at(hours + step_hours, offset=climatology_offset)
            yield reference + factor * (following - reference)
        previous, current = current, following
        hours = hours + step_hours
