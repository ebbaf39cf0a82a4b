"""The plans a run makes as it goes: the epoch plan at the start, stage 2 re-sized to the budget left,
the lead calibration's inits sized to what is left after training.

`training.budget` holds the pure arithmetic of each plan; this module feeds it what the run measured
(its epochs' costs, its validation passes' seconds) and its windows. Each plan returns the new config
and the `Choice` that says why, which the trainer prints and writes into the bundle.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from fno_forecast.models.stepper import Stepper
from fno_forecast.training.budget import (
    MIN_CALIBRATION_INITS,
    calibration_plan,
    fit_sample_cost,
    initial_plan,
    kept_inits,
    replan_rollouts,
)
from fno_forecast.training.calibration_fit import calibration_windows
from fno_forecast.training.config import TrainConfig
from fno_forecast.training.data_setup import WindowCache
from fno_forecast.training.defaults import Choice
from fno_forecast.training.epoch import to_device
from fno_forecast.training.schedule import n_batches


class RunPlanner:
    """Plans for one run's windows and validation leads.

    `budget_s` > 0: the epoch plan was derived for that budget, so stage 2 is re-planned from the cost
    training measures; `derived_val_stride` / `derived_cal_stride`: the user left those strides to the
    budget, so validation and the lead calibration may thin their inits."""

    def __init__(
        self,
        *,
        windows: WindowCache,
        lead_steps: tuple[int, ...],
        world_size: int,
        steps_per_day: float,
        curriculum: tuple[int, ...],
        derived_val_stride: bool,
        derived_cal_stride: bool,
    ) -> None:
        self.windows = windows
        self.lead_steps = lead_steps
        self.world_size = world_size
        self.steps_per_day = steps_per_day
        self.curriculum = curriculum
        self.derived_val_stride = derived_val_stride
        self.derived_cal_stride = derived_cal_stride
        self.budget_s = 0.0
        self._after: dict[tuple[float, int, int], float] = {}  # `after_training_s` per pass cost and strides
        self.reserved_s = 0.0  # what the last `stops_training` kept of the budget for after training

    def batches_for(self, config: TrainConfig, steps: int) -> int:
        """Optimiser steps per epoch of `steps`-step windows on this rank."""
        cap = config.rollout_samples_per_epoch if steps > 1 else config.samples_per_epoch
        return n_batches(
            n_windows=len(self.windows.train(steps)),
            batch_size=config.batch_size,
            world_size=self.world_size,
            cap=cap,
        )

    def stage2_steps(self, config: TrainConfig) -> int:
        return sum(self.batches_for(config, k) for k in config.rollout_steps)

    def initial(
        self,
        config: TrainConfig,
        *,
        stepper: Stepper,
        device: torch.device,
        budget_s: float,
        clock: Callable[[], float],
    ) -> tuple[TrainConfig, Choice]:
        """The epochs sized to `budget_s` from a few timed one-step batches (`budget.initial_plan`)."""
        dataset = self.windows.train(1)
        batch = dataset.batch(list(range(min(config.batch_size, len(dataset)))))
        self.budget_s = budget_s
        return initial_plan(
            config,
            stepper=stepper,
            batch=to_device(batch, device),
            windows=self.windows,
            lead_steps=self.lead_steps,
            budget_s=budget_s,
            clock=clock,
            thin_validation=self.derived_val_stride,
        )

    def rollouts(
        self,
        config: TrainConfig,
        *,
        epoch: int,
        epoch_costs: list[tuple[int, int, float]],
        validation_s: float,
        remaining_s: float,
    ) -> tuple[TrainConfig, Choice]:
        """Stage 2 sized to the budget left at the cost training measured (after stage 1, and again after
        stage 2's first epoch: `epoch` is the number of epochs done)."""
        done = tuple(config.rollout_steps[: epoch - config.stage1_epochs])
        curriculum = self.curriculum
        if done:  # the rest of the curriculum (its longest rollout repeated when that was its only one)
            curriculum = curriculum[1:] or curriculum[-1:]
        return replan_rollouts(
            config,
            cost=fit_sample_cost(epoch_costs),
            validation_s=validation_s,
            remaining_s=remaining_s,
            budget_s=self.budget_s,
            windows=self.windows,
            curriculum=curriculum,
            done=done,
        )

    def _seconds_per_init(self, config: TrainConfig, validation_s: float) -> float:
        """What one validation init cost (a rollout of the longest lead), from a pass of `validation_s`."""
        validated = kept_inits(len(self.windows.validation(max(self.lead_steps))), config.val_init_stride)
        return validation_s / max(validated / self.world_size, 1.0)  # validation splits its inits by rank

    def after_training_s(self, config: TrainConfig, *, validation_s: float) -> float:
        """Seconds the run still needs once training stops, from a validation pass of `validation_s`:
        the pass that validates what training has, the skill guard's (about one more) and the lead
        calibration's rollouts (as many inits as its stride keeps, or, where the budget may thin them,
        `MIN_CALIBRATION_INITS`). Training stops that much before the budget ends, so that `--max-minutes`
        bounds the whole run: with the tour's 1-minute budget, training stopped at 58 s and the run took
        2 min 20 s, its 288 calibration inits (the config's stride) and the guard after it."""
        if validation_s <= 0:
            return 0.0
        calibration = 0.0
        if config.lead_calibration:
            dataset, _ = calibration_windows(self.windows, max(self.lead_steps))
            inits = kept_inits(len(dataset), config.calibration_init_stride)
            if self.derived_cal_stride:
                inits = min(inits, MIN_CALIBRATION_INITS)
            calibration = inits * self._seconds_per_init(config, validation_s)
        return 2.0 * validation_s + calibration

    def stops_training(
        self, config: TrainConfig, *, elapsed_s: float, validation_s: float, budget_s: float
    ) -> bool:
        """Whether training stops now: `elapsed_s` and what the run still needs after it (at the last
        validation's cost, worked out once per pass) would pass `budget_s`."""
        key = (validation_s, config.calibration_init_stride, config.val_init_stride)
        if key not in self._after:
            self._after[key] = self.after_training_s(config, validation_s=validation_s)
        self.reserved_s = self._after[key]
        return elapsed_s + self.reserved_s > budget_s

    def calibration(
        self, config: TrainConfig, *, validation_s: float, remaining_s: float
    ) -> tuple[TrainConfig, Choice | None]:
        """The lead calibration's inits thinned to what the budget has left after the skill guard's pass
        (about one validation pass), at the cost per init the validation passes measured."""
        if not config.lead_calibration or not self.derived_cal_stride or validation_s <= 0:
            return config, None
        dataset, _ = calibration_windows(self.windows, max(self.lead_steps))
        return calibration_plan(
            config,
            n_inits=len(dataset),
            seconds_per_init=self._seconds_per_init(config, validation_s),
            allowance_s=remaining_s - validation_s,
            steps_per_day=self.steps_per_day,
        )
