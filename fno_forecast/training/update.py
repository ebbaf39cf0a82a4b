"""One optimisation step: the K-step rollout loss of a batch, its gradients and the weight update.

It owns the optimiser and the learning-rate schedule (stage 1 then stage 2, `training.schedule`); the
trainer re-plans stage 2 once stage 1 has been timed, and the schedule follows (`replan`).
"""

from __future__ import annotations

import torch
from torch import nn

from fno_forecast.models.stepper import Stepper
from fno_forecast.training.config import TrainConfig
from fno_forecast.training.epoch import to_device
from fno_forecast.training.gradients import clip_gradients
from fno_forecast.training.loss import weighted_mse
from fno_forecast.training.schedule import LearningRate


class WeightUpdate:
    """`update(batch, steps) -> loss`: the loss of `steps`-step rollouts from the batch's states, one
    AdamW step on the stepper's network, one scheduler step."""

    def __init__(
        self,
        *,
        stepper: Stepper,
        unroller: nn.Module,
        config: TrainConfig,
        lat_weights: torch.Tensor,
        channel_weights: torch.Tensor,
        device: torch.device,
        autocast: torch.dtype | None,
        stage1_steps: int,
        stage2_steps: int,
    ) -> None:
        self.stepper = stepper
        self.unroller = unroller
        self.config = config
        self.lat_weights = lat_weights
        self.channel_weights = channel_weights
        self.device = device
        self.autocast = autocast
        self.schedule = LearningRate(config, stage1_steps=stage1_steps, stage2_steps=stage2_steps)
        # foreach: one multi-tensor update instead of a Python loop over parameters (the default on CPU);
        # `fused` would be faster still but refuses the complex spectral weights.
        self.optimizer = torch.optim.AdamW(
            stepper.network.parameters(), lr=config.lr, weight_decay=config.weight_decay, foreach=True
        )
        # the schedule is looked up at each step: stage 2 may be re-planned once stage 1 has been timed
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: self.schedule.factor(step)
        )

    def replan(self, config: TrainConfig, *, stage2_steps: int) -> None:
        """Stage 2 re-planned: the schedule's second cosine spans `stage2_steps` optimiser steps."""
        self.config = config
        self.schedule = LearningRate(
            config, stage1_steps=self.schedule.stage1_steps, stage2_steps=stage2_steps
        )

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def __call__(self, batch: dict[str, torch.Tensor], steps: int) -> float:
        batch = to_device(batch, self.device)
        targets = batch["targets"][:, :steps]
        state, previous = batch["state"], batch.get("previous")
        if self.config.input_noise > 0:
            scale = self.config.input_noise * self.stepper.tendency_std
            state = state + scale * torch.randn_like(state)
            if previous is not None:
                previous = previous + scale * torch.randn_like(previous)
        with torch.autocast(
            self.device.type, dtype=self.autocast or torch.float32, enabled=self.autocast is not None
        ):
            predicted = self.unroller(state, batch["time_hours"], previous, steps)
        # All K steps in one op: normalised error (predicted - target) / std, the mean over steps.
        std = self.stepper.std.unsqueeze(1)
        loss = weighted_mse(
            predicted / std, targets / std, lat_weights=self.lat_weights, channel_weights=self.channel_weights
        )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.grad_clip > 0:
            clip_gradients(self.stepper.network.parameters(), max_norm=self.config.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        return float(loss.detach())
