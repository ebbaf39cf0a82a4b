"""The bundle's own prior without the network: what the network adds is the model minus this.

A stepper with a prior forecasts the prior's step plus the network's tendency (`fno_forecast.models.stepper`):
`state + climatological tendency - r * anomaly` for the damped prior, the linear spectral step on global
grids with both poles. With the network's tendency set to zero it is the prior alone: damped anomaly
persistence (the AR(1) prior) or the linear dynamics per zonal wavenumber, fitted on the training data. It is scored with and without each of
the bundle's corrections (the recent-anomaly offset of the climatology, the per-lead calibration), so a
score card separates what the network adds from what the prior and the corrections already give.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from fno_forecast.bundle import Bundle
from fno_forecast.models.stepper import Stepper


class ZeroTendency(nn.Module):
    """A network that predicts no tendency: the stepper is then its prior alone."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return inputs.new_zeros(inputs.shape[0], self.channels, *inputs.shape[2:])


@dataclass(frozen=True)
class RolloutSystem:
    """A system rolled out by a stepper, with or without each correction."""

    name: str
    stepper: Stepper
    recent_anomaly: bool
    lead_calibration: bool


PRIOR_VARIANTS: dict[str, tuple[bool, bool]] = {
    "prior": (False, False),
    "prior_recent": (True, False),
    "prior_calibrated": (False, True),
    "prior_recent_calibrated": (True, True),
}


def prior_stepper(stepper: Stepper) -> Stepper | None:
    """A copy of `stepper` whose network predicts nothing; None when it has no prior."""
    if stepper.prior == "none":
        return None
    prior = copy.deepcopy(stepper)
    prior.network = ZeroTendency(stepper.n_channels)
    return prior.eval()


def prior_name(*, recent_anomaly: bool, lead_calibration: bool) -> str:
    """The prior variant with the given corrections."""
    for name, flags in PRIOR_VARIANTS.items():
        if flags == (recent_anomaly, lead_calibration):
            return name
    raise AssertionError("PRIOR_VARIANTS covers every pair of flags")


def prior_systems(bundle: Bundle) -> list[RolloutSystem]:
    """Every prior variant whose corrections the bundle has (none without a prior)."""
    stepper = prior_stepper(bundle.stepper)
    if stepper is None:
        return []
    systems = []
    for name, (recent, calibrated) in PRIOR_VARIANTS.items():
        if recent and bundle.recent_anomaly is None or calibrated and bundle.lead_calibration is None:
            continue
        systems.append(RolloutSystem(name, stepper, recent, calibrated))
    return systems
