"""Per-lead calibration of forecast anomalies: the least-squares factor by which to scale them.

A deterministic forecast trained on the mean squared error is still not the conditional mean at every
lead: at some leads its anomalies are too weak, at long leads too strong for the skill they have
(`fno-forecast info MODEL` prints a bundle's fitted factors). Model output statistics (MOS) have corrected this since the 1970s.
After training, the model is rolled out from training-period inits and, per lead step `k` and channel
`c`, the factor `f[k, c]` minimises the latitude-weighted squared error of

    forecast'_k = reference_k + f[k, c] * (forecast_k - reference_k)

where the reference is the stepper's climatology (plus the recent-anomaly offset where a forecast uses
one). The autoregressive state is never changed: only what the rollout yields is. Leads beyond the fitted
ones use the last factor. Fitted on the training period only; the factors are a few hundred numbers
in `model.json`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from fno_forecast.data.windows import WindowDataset
from fno_forecast.models.stepper import Stepper
from fno_forecast.rollout import rollout_windows

FACTOR_RANGE = (0.0, 2.0)


@dataclass(frozen=True)
class LeadCalibration:
    """`factors[k][c]` for lead step k + 1 and channel c, fitted on `inits` inits of `fitted_on`."""

    factors: tuple[tuple[float, ...], ...]
    fitted_on: str
    inits: int
    kept: int = -1  # factors kept by the held-out check (-1: fitted before the check existed)
    held_out_gain: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "factors": [list(f) for f in self.factors],
            "fitted_on": self.fitted_on,
            "inits": self.inits,
            "kept": self.kept,
            "held_out_gain": self.held_out_gain,
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> LeadCalibration:
        factors = tuple(tuple(float(x) for x in row) for row in values["factors"])
        if not factors or len({len(row) for row in factors}) != 1:
            raise ValueError("lead_calibration: factors must be a non-empty list of equal-length rows")
        low, high = FACTOR_RANGE
        if not all(low <= x <= high for row in factors for x in row):
            raise ValueError(f"lead_calibration: factors must lie in [{low}, {high}]")
        return cls(
            factors=factors,
            fitted_on=str(values["fitted_on"]),
            inits=int(values["inits"]),
            kept=int(values.get("kept", -1)),
            held_out_gain=float(values.get("held_out_gain", 0.0)),
        )

    @property
    def n_channels(self) -> int:
        return len(self.factors[0])

    def tensor(self, device: torch.device | str = "cpu") -> torch.Tensor:
        """`(steps, channel)` float32."""
        return torch.tensor(self.factors, dtype=torch.float32, device=device)


def calibrate(
    steps: Iterator[torch.Tensor],
    *,
    stepper: Stepper,
    time_hours: torch.Tensor,
    factors: torch.Tensor | None,
    climatology_offset: torch.Tensor | None = None,
) -> Iterator[torch.Tensor]:
    """What a rollout yields, each step's anomaly about the (offset) climatology scaled by its factor.

    `steps` is a `fno_forecast.rollout.rollout` started at `time_hours`; `factors` `(K, C)`, the last row
    used beyond K. Without factors the steps pass through unchanged. The rollout's own state is untouched.
    """
    hours = time_hours.to(torch.float64)
    for step, following in enumerate(steps, start=1):
        if factors is None:
            yield following
            continue
        factor = factors[min(step, factors.shape[0]) - 1].view(1, -1, 1, 1)
        reference = stepper.climatology_at(hours + step * stepper.step_hours, offset=climatology_offset)
        yield reference + factor * (following - reference)


@torch.no_grad()
def fit_lead_calibration(
    stepper: Stepper,
    dataset: WindowDataset,
    *,
    n_steps: int,
    lat_weights: torch.Tensor,
    init_stride: int,
    batch_size: int,
    device: torch.device,
    period: str,
) -> LeadCalibration | None:
    """Fit the factors on training windows of at least `n_steps` steps; None without a climatology."""
    if not stepper.use_climatology or len(dataset) == 0:
        return None
    was_training = stepper.training
    stepper.eval()
    indices = np.arange(0, len(dataset), max(1, init_stride))
    n_channels = stepper.n_channels
    # Per half (alternating inits): sums of w*a*o, w*a*a and w*o*o per lead step and channel.
    cross = torch.zeros(2, n_steps, n_channels, dtype=torch.float64, device=device)
    power = torch.zeros(2, n_steps, n_channels, dtype=torch.float64, device=device)
    truth = torch.zeros(2, n_steps, n_channels, dtype=torch.float64, device=device)
    weights = lat_weights.to(device).double()
    for batch, step, predicted in rollout_windows(
        stepper, dataset, indices=indices, n_steps=n_steps, batch_size=batch_size, device=device
    ):
        hours = batch["time_hours"].double()
        reference = stepper.climatology_at(hours + step * stepper.step_hours).double()
        anomaly = predicted.double() - reference
        observed = batch["targets"][:, step - 1].double() - reference
        half = torch.arange(anomaly.shape[0], device=anomaly.device) % 2  # alternating inits
        for h in (0, 1):
            a, o = anomaly[half == h], observed[half == h]
            cross[h, step - 1] += (weights * a * o).sum(dim=(0, 2, 3))
            power[h, step - 1] += (weights * a * a).sum(dim=(0, 2, 3))
            truth[h, step - 1] += (weights * o * o).sum(dim=(0, 2, 3))
    stepper.train(was_training)
    low, high = FACTOR_RANGE
    fitted = (cross / power.clamp(min=1e-12)).clamp(low, high)  # (half, step, channel)

    def error(f: torch.Tensor, h: int) -> torch.Tensor:  # squared error of factor f on half h
        return truth[h] - 2 * f * cross[h] + f * f * power[h]

    crossed = error(fitted[1], 0) + error(fitted[0], 1)
    plain = error(torch.ones_like(fitted[0]), 0) + error(torch.ones_like(fitted[0]), 1)
    helps = crossed < plain
    factors = (cross.sum(0) / power.sum(0).clamp(min=1e-12)).clamp(low, high)
    factors = torch.where(helps, factors, torch.ones_like(factors)).cpu().numpy()
    gain = (
        float(((plain - crossed) / plain.clamp(min=1e-12))[helps].sum().item()) if bool(helps.any()) else 0.0
    )
    return LeadCalibration(
        factors=tuple(tuple(float(x) for x in row) for row in factors),
        fitted_on=period,
        inits=int(len(indices)),
        kept=int(helps.sum().item()),
        held_out_gain=gain,
    )
