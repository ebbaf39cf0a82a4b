"""Size the batches to a memory budget, from an estimate of what the network takes per sample.

On a global grid the network's activations, not the data, fill the memory: one training sample of the
SFNO 112 wide on 121 x 240 keeps about 0.38 GB for its backward pass, so the batch that suits the number
of windows (32 on a 40 GB store) would need 12 GB, and a 16-step rollout sixteen times that. `max_memory_gb`
bounds what the network may take in training: its weights, gradients and AdamW's two moments (4 copies of
the weights, counted exactly on a network built on the meta device: no memory, no compute) and the
activations of one batch. The interpreter, torch and the data held in memory (`max_in_memory_gb`) come on
top.

Per sample, training keeps about `TRAIN_UNITS_PER_LAYER` tensors of `(width, lat, lon)` float32 per layer
(inputs of the spectral and pointwise convolutions, the activations, the lifting and projection at twice
the width); inference holds about `INFERENCE_UNITS` at a time. Both were measured as resident memory over
batches 1, 4 and 8 of the default FNO and SFNO on 121 x 240 x 14 (FNO 36 and SFNO 28-31 per sample in
training, 8-9 in inference) and rounded up. Regional grids are padded before the FFTs (at most about
twice the points, `models.padding`), so they count double.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from fno_forecast.data.schema import GridInfo
from fno_forecast.models.registry import FNOConfig, SFNOConfig, build_network, resolve_defaults

TRAIN_UNITS_PER_LAYER = 10
INFERENCE_UNITS = 10
WEIGHT_COPIES = 4  # weights, gradients, AdamW's two moments
MAX_VAL_BATCH = 64


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes the network takes: its weights (once) and the activations of one sample."""

    weight_bytes: int
    train_bytes_per_sample: int
    inference_bytes_per_sample: int

    def activation_budget(self, max_memory_gb: float) -> float:
        """Bytes left for the activations of one batch under `max_memory_gb`."""
        return max_memory_gb * 1e9 - WEIGHT_COPIES * self.weight_bytes

    def describe(self) -> str:
        return (
            f"weights {self.weight_bytes / 1e9:.2f} GB x {WEIGHT_COPIES}, "
            f"{self.train_bytes_per_sample / 1e9:.2f} GB per training sample"
        )


def estimate_memory(
    *, model: str, config: FNOConfig | SFNOConfig, grid: GridInfo, in_channels: int, out_channels: int
) -> MemoryEstimate:
    """The memory estimate of network `model` with `config` (zeros resolved from the grid) on `grid`."""
    resolved = resolve_defaults(config, grid)
    with torch.device("meta"):
        network = build_network(
            model, resolved, in_channels=in_channels, out_channels=out_channels, grid=grid
        )
    weights = sum(p.numel() * p.element_size() for p in network.parameters())
    points = grid.nlat * grid.nlon * (1 if grid.is_global else 2)
    unit = 4 * resolved.hidden_channels * points
    return MemoryEstimate(
        weight_bytes=int(weights),
        train_bytes_per_sample=int(TRAIN_UNITS_PER_LAYER * resolved.n_layers * unit),
        inference_bytes_per_sample=int(INFERENCE_UNITS * unit),
    )


def _fitting_power_of_two(budget: float, per_item: int, *, high: int) -> int:
    """The largest power of two `n <= high` with `n * per_item <= budget` (at least 1)."""
    if per_item <= 0:
        return high
    fit = budget / per_item
    return int(min(high, 2 ** int(math.floor(math.log2(fit))))) if fit >= 1 else 1


@dataclass(frozen=True)
class MemoryPlan:
    batch_size: int
    activation_checkpointing: bool
    val_batch_size: int
    why: str


def plan_for_memory(
    estimate: MemoryEstimate, *, max_memory_gb: float, batch_size: int, longest_rollout: int
) -> MemoryPlan:
    """Cap `batch_size` (a power of two) so one batch's activations fit `max_memory_gb`; recompute the
    activations of each rollout step in the backward pass (activation checkpointing) when a batch of the
    `longest_rollout`-step rollouts would not fit otherwise; and the validation batch that fits."""
    budget = estimate.activation_budget(max_memory_gb)
    per_sample = estimate.train_bytes_per_sample
    batch = min(batch_size, _fitting_power_of_two(budget, per_sample, high=batch_size))
    checkpointing = batch * max(longest_rollout, 1) * per_sample > budget
    val_batch = _fitting_power_of_two(budget, estimate.inference_bytes_per_sample, high=MAX_VAL_BATCH)
    why = f"max_memory_gb {max_memory_gb:g}: {estimate.describe()}"
    return MemoryPlan(batch, checkpointing, val_batch, why)
