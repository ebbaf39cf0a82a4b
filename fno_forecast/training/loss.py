"""Latitude-weighted losses and scores.

A regular lat/lon grid crowds points toward the poles; weighting each row by
`fno_forecast.data.grid.latitude_weight_tensor` makes the mean squared error an area mean.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import torch

from fno_forecast.data.schema import ChannelInfo
from fno_forecast.errors import ConfigError

LevelWeighting = Literal["none", "pressure"]


def channel_weight_tensor(weights: tuple[float, ...] | list[float], n_channels: int) -> torch.Tensor:
    """`(1, C, 1, 1)` per-channel loss weights with mean 1 (all ones when none are given)."""
    if not weights:
        return torch.ones(1, n_channels, 1, 1)
    if len(weights) != n_channels:
        raise ValueError(
            f"channel_weights: expected {n_channels} weights (one per channel), got {len(weights)}"
        )
    values = torch.tensor([float(w) for w in weights], dtype=torch.float32)
    if float(values.sum()) <= 0:
        raise ValueError("channel_weights: at least one weight must be positive")
    return (values / values.mean()).view(1, -1, 1, 1)


def level_factors(channels: Sequence[ChannelInfo], *, level_weighting: LevelWeighting) -> list[float]:
    """Per-channel factors from the vertical level: 1 for surface channels and with `none`; with
    `pressure`, level / (mean of the distinct levels), as GraphCast weights pressure levels (the upper
    levels, thin in mass, count less)."""
    if level_weighting not in ("none", "pressure"):
        raise ConfigError(f"level_weighting: expected none or pressure, got {level_weighting!r}")
    levels = sorted({c.level for c in channels if c.level is not None})
    if level_weighting == "none" or not levels:
        return [1.0] * len(channels)
    mean = sum(levels) / len(levels)
    return [1.0 if c.level is None else float(c.level) / mean for c in channels]


def channel_loss_weights(
    channels: Sequence[ChannelInfo],
    *,
    channel_weights: Sequence[float] = (),
    variable_weights: Mapping[str, float] | None = None,
    level_weighting: LevelWeighting = "none",
) -> torch.Tensor:
    """`(1, C, 1, 1)` loss weights with mean 1: the product of the explicit per-channel weights (one per
    channel, or none), the factor of each channel's variable (`variable_weights`, 1 for a variable not
    named) and its level factor (`level_factors`). A variable named that no channel has is a ConfigError."""
    variable_weights = dict(variable_weights or {})
    present = {c.variable for c in channels}
    unknown = sorted(set(variable_weights) - present)
    if unknown:
        raise ConfigError(
            f"variable_weights: no channel of variable(s) {', '.join(unknown)}; "
            f"variables: {', '.join(sorted(present))}"
        )
    base = channel_weight_tensor(tuple(channel_weights), len(channels)).flatten()
    factors = [
        variable_weights.get(c.variable, 1.0) * level
        for c, level in zip(channels, level_factors(channels, level_weighting=level_weighting), strict=True)
    ]
    weights = base * torch.tensor(factors, dtype=torch.float32)
    if float(weights.sum()) <= 0:
        raise ConfigError(
            "channel_weights, variable_weights: at least one channel must have a positive weight"
        )
    return (weights / weights.mean()).view(1, -1, 1, 1)


def weighted_mse(
    prediction: torch.Tensor,
    target: torch.Tensor,
    *,
    lat_weights: torch.Tensor,
    channel_weights: torch.Tensor,
) -> torch.Tensor:
    """Scalar mean over batch, channel and grid of `w_lat * w_channel * (prediction - target)^2`.

    Pass normalised tensors `(B, C, H, W)` so that channels of different units count alike.
    """
    error = (prediction.float() - target.float()).square()
    return (error * lat_weights * channel_weights).mean()


def weighted_squared_error_sums(
    prediction: torch.Tensor, target: torch.Tensor, *, lat_weights: torch.Tensor
) -> torch.Tensor:
    """`(C,)` sums over the batch of the lat-weighted spatial mean squared error, in physical units.

    Summing these over init times and dividing by the count gives the time-mean of the spatial MSE, whose
    square root is the lat-weighted RMSE of the baselines table.
    """
    error = (prediction.double() - target.double()).square() * lat_weights.double()
    return error.mean(dim=(2, 3)).sum(dim=0)
