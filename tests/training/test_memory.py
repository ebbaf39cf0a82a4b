"""Batch sizes and activation checkpointing derived from a memory budget (`training.memory`)."""

from __future__ import annotations

import numpy as np
import torch

from fno_forecast.data.schema import GridInfo
from fno_forecast.models.registry import SFNOConfig, build_network, resolve_defaults
from fno_forecast.models.stepper import stepper_in_channels
from fno_forecast.training.config import load_config_and_keys
from fno_forecast.training.defaults import data_facts, derive_defaults
from fno_forecast.training.memory import estimate_memory

GRID = GridInfo(tuple(np.linspace(90.0, -90.0, 17)), tuple(np.arange(32) * 11.25))
CHANNELS = 3
TRAIN, VAL = "2000-01-01/2003-12-31", "2004-01-01/2004-06-30"


def _facts():
    times = np.datetime64("2000-01-01", "ns") + np.arange(4 * 366 * 5) * np.timedelta64(6, "h")
    return data_facts(times, train_period=TRAIN, val_period=VAL, grid=GRID, n_channels=CHANNELS)


def _derive(**overrides):
    config, keys = load_config_and_keys(
        None, overrides={"train_period": TRAIN, "val_period": VAL, **overrides}
    )
    resolved, choices = derive_defaults(config, explicit=keys, facts=_facts())
    estimate = estimate_memory(
        model=resolved.model,
        config=resolved.model_config(),
        grid=GRID,
        in_channels=stepper_in_channels(CHANNELS, use_history=True, use_climatology=True),
        out_channels=CHANNELS,
    )
    return resolved, {c.key: c for c in choices}, estimate


def test_a_large_budget_keeps_the_batch_the_windows_suggest() -> None:
    resolved, choices, _ = _derive(max_memory_gb=100.0)
    assert resolved.model == "sfno" and max(resolved.rollout_steps) == 40
    assert resolved.batch_size == 32  # ~5,800 windows: a 64th, capped at 32
    assert resolved.activation_checkpointing is False and resolved.val_batch_size == 64
    assert "by memory" not in choices["batch_size"].why


def test_the_derived_batch_and_checkpointing_follow_the_budget() -> None:
    _, _, estimate = _derive(max_memory_gb=100.0)
    per_sample = estimate.train_bytes_per_sample
    weights = 4 * estimate.weight_bytes
    # room for 5 training samples: batch 4; 40-step rollouts of 4 samples do not fit -> checkpointing
    gb = (weights + 5 * per_sample) / 1e9
    resolved, choices, _ = _derive(max_memory_gb=gb)
    assert resolved.batch_size == 4
    assert (
        resolved.batch_size * per_sample + weights
        <= gb * 1e9
        < 2 * resolved.batch_size * per_sample + weights
    )
    assert resolved.activation_checkpointing is True
    assert resolved.val_batch_size * estimate.inference_bytes_per_sample + weights <= gb * 1e9
    assert "at most 4 by memory (max_memory_gb" in choices["batch_size"].why
    # room for 64 samples: the largest batch (32), its 40-step rollouts recomputed; room for 40 x 32: not
    resolved, _, _ = _derive(max_memory_gb=(weights + 64 * per_sample) / 1e9)
    assert resolved.batch_size == 32 and resolved.activation_checkpointing is True
    resolved, _, _ = _derive(max_memory_gb=(weights + 40 * 32 * per_sample) / 1e9)
    assert resolved.batch_size == 32 and resolved.activation_checkpointing is False
    # under one sample: batch 1, recomputing
    resolved, _, _ = _derive(max_memory_gb=(weights + per_sample / 2) / 1e9)
    assert (resolved.batch_size, resolved.activation_checkpointing) == (1, True)
    assert resolved.val_batch_size * estimate.inference_bytes_per_sample <= per_sample / 2


def test_an_explicit_batch_is_kept_and_checkpointing_follows_it() -> None:
    _, _, estimate = _derive(max_memory_gb=100.0)
    gb = (4 * estimate.weight_bytes + 20 * estimate.train_bytes_per_sample) / 1e9
    resolved, choices, _ = _derive(max_memory_gb=gb, batch_size=2)
    assert resolved.batch_size == 2 and "batch_size" not in choices
    assert resolved.activation_checkpointing is True  # 2 x 40 steps > 20 samples
    resolved, _, _ = _derive(max_memory_gb=gb, batch_size=2, activation_checkpointing=False)
    assert resolved.activation_checkpointing is False


def test_the_estimate_bounds_what_a_training_step_keeps_per_sample() -> None:
    """Bytes saved for the backward pass (unique storages) grow by at most the estimate per sample."""
    config = SFNOConfig(hidden_channels=16)
    in_channels = stepper_in_channels(CHANNELS, use_history=True, use_climatology=True)
    estimate = estimate_memory(
        model="sfno", config=config, grid=GRID, in_channels=in_channels, out_channels=CHANNELS
    )
    torch.manual_seed(0)
    network = build_network("sfno", config, in_channels=in_channels, out_channels=CHANNELS, grid=GRID)
    assert estimate.weight_bytes == sum(p.numel() * p.element_size() for p in network.parameters())

    def saved_bytes(batch: int) -> int:
        storages: dict[int, int] = {}

        def pack(tensor: torch.Tensor) -> torch.Tensor:
            storage = tensor.untyped_storage()
            storages[storage.data_ptr()] = storage.nbytes()
            return tensor

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            out = network(torch.randn(batch, in_channels, GRID.nlat, GRID.nlon))
        out.pow(2).mean().backward()
        return sum(storages.values())

    per_sample = (saved_bytes(5) - saved_bytes(1)) / 4
    assert resolve_defaults(config, GRID).n_layers == 4
    assert 0.5 * estimate.train_bytes_per_sample <= per_sample <= estimate.train_bytes_per_sample
