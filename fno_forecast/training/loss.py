"""Latitude-weighted losses and scores.

A regular lat/lon grid crowds points toward the poles; weighting each row by
`fno_forecast.data.grid.latitude_weight_tensor` makes the mean squared error an area mean.
"""

from __future__ import annotations

import torch


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
