"""Learning-rate schedule and per-epoch batch plans, both pure functions of the config and the step.

Being pure is what makes resume exact: the learning rate at step n and the batches of epoch e never
depend on anything but `(config, n)` and `(seed, e)`.
"""

from __future__ import annotations

import math

import numpy as np

from fno_forecast.training.config import TrainConfig


def epoch_batches(
    *, n_windows: int, epoch: int, seed: int, batch_size: int, rank: int, world_size: int, cap: int = 0
) -> list[list[int]]:
    """This rank's batches of window indices for one epoch: a seeded permutation, sharded, whole batches."""
    order = np.random.default_rng([seed, epoch]).permutation(n_windows)
    if cap > 0:
        order = order[:cap]
    per_rank = len(order) // world_size
    mine = order[rank::world_size][:per_rank]
    n_batches = max(len(mine) // batch_size, 1 if len(mine) else 0)
    return [mine[i * batch_size : (i + 1) * batch_size].tolist() for i in range(n_batches)]


def n_batches(*, n_windows: int, batch_size: int, world_size: int, cap: int = 0) -> int:
    used = min(n_windows, cap) if cap > 0 else n_windows
    per_rank = used // world_size
    return max(per_rank // batch_size, 1 if per_rank else 0)


class LearningRate:
    """Stage 1: linear warm-up then cosine from `lr` to `lr * min_lr_ratio`; stage 2: cosine from `rollout_lr`.

    `factor(step)` is relative to `config.lr` (what `torch.optim.lr_scheduler.LambdaLR` expects).
    """

    def __init__(self, config: TrainConfig, *, stage1_steps: int, stage2_steps: int) -> None:
        self.config = config
        self.stage1_steps = stage1_steps
        self.stage2_steps = stage2_steps

    def factor(self, step: int) -> float:
        c = self.config
        if step < self.stage1_steps:
            # at most a fifth of stage 1: a budget-sized stage 1 of a few dozen steps still reaches `lr`
            warm = min(c.warmup_steps, self.stage1_steps // 5)
            if warm and step < warm:
                return (step + 1) / warm
            progress = (step - warm) / max(self.stage1_steps - warm, 1)
            return _cosine(progress, c.min_lr_ratio)
        progress = (step - self.stage1_steps) / max(self.stage2_steps, 1)
        return (c.rollout_lr / c.lr) * _cosine(min(progress, 1.0), c.min_lr_ratio)


def _cosine(progress: float, floor: float) -> float:
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * min(max(progress, 0.0), 1.0)))
