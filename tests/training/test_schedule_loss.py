"""Loss weights, learning-rate schedule and batch plans (the pure parts of exact resume)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fno_forecast.data.grid import latitude_weight_tensor
from fno_forecast.training.config import TrainConfig
from fno_forecast.training.loss import (
    channel_weight_tensor,
    weighted_mse,
    weighted_squared_error_sums,
)
from fno_forecast.training.schedule import LearningRate, epoch_batches, n_batches


def test_weighted_mse_counts_equator_more_than_high_latitudes() -> None:
    lat_w = latitude_weight_tensor(np.array([60.0, 0.0]))
    zero = torch.zeros(1, 1, 2, 3)
    north = zero.clone()
    north[:, :, 0] = 1.0
    equator = zero.clone()
    equator[:, :, 1] = 1.0
    ones = channel_weight_tensor((), 1)
    low = weighted_mse(north, zero, lat_weights=lat_w, channel_weights=ones)
    high = weighted_mse(equator, zero, lat_weights=lat_w, channel_weights=ones)
    assert float(low) == pytest.approx(0.5 * (0.5 / 0.75))
    assert float(high) == pytest.approx(0.5 * (1.0 / 0.75))


def test_channel_weights_and_error_sums() -> None:
    weights = channel_weight_tensor((1.0, 3.0), 2).flatten()
    assert weights.tolist() == [0.5, 1.5]
    with pytest.raises(ValueError, match="expected 2 weights"):
        channel_weight_tensor((1.0,), 2)
    lat_w = latitude_weight_tensor(np.array([10.0, -10.0]))
    pred = torch.full((3, 2, 2, 4), 2.0)
    sums = weighted_squared_error_sums(pred, torch.zeros_like(pred), lat_weights=lat_w)
    assert sums.tolist() == pytest.approx([12.0, 12.0])


def test_learning_rate_warms_up_decays_and_switches_for_rollout() -> None:
    config = TrainConfig(lr=1e-3, rollout_lr=2e-4, warmup_steps=10, min_lr_ratio=0.1)
    schedule = LearningRate(config, stage1_steps=110, stage2_steps=50)
    assert schedule.factor(0) == pytest.approx(0.1)
    assert schedule.factor(9) == pytest.approx(1.0)
    assert schedule.factor(60) == pytest.approx(0.1 + 0.9 * 0.5)
    assert schedule.factor(109) == pytest.approx(0.1, abs=1e-3)
    assert schedule.factor(110) == pytest.approx(0.2)
    assert schedule.factor(160) == pytest.approx(0.02)


def test_epoch_batches_are_seeded_sharded_and_disjoint() -> None:
    a = epoch_batches(n_windows=50, epoch=3, seed=7, batch_size=4, rank=0, world_size=2)
    b = epoch_batches(n_windows=50, epoch=3, seed=7, batch_size=4, rank=1, world_size=2)
    assert a == epoch_batches(n_windows=50, epoch=3, seed=7, batch_size=4, rank=0, world_size=2)
    assert a != epoch_batches(n_windows=50, epoch=4, seed=7, batch_size=4, rank=0, world_size=2)
    flat_a, flat_b = sum(a, []), sum(b, [])
    assert len(a) == len(b) == n_batches(n_windows=50, batch_size=4, world_size=2) == 6
    assert not set(flat_a) & set(flat_b)
    capped = epoch_batches(n_windows=50, epoch=0, seed=0, batch_size=4, rank=0, world_size=1, cap=10)
    assert len(capped) == 2


def test_a_short_stage_one_reaches_its_peak_rate_after_at_most_a_fifth_of_it() -> None:
    """A budget-sized stage 1 of 58 steps with the default 100 warm-up steps: warming up over all of it
    would train the whole stage below its rate."""
    schedule = LearningRate(TrainConfig(warmup_steps=100), stage1_steps=58, stage2_steps=10)
    factors = [schedule.factor(step) for step in range(58)]
    assert max(factors) == 1.0 and factors.index(1.0) <= 58 // 5
    assert factors[0] < 0.2 and factors[-1] < 0.1  # a warm-up, then the cosine down to the floor
