"""The training loop: setup -> fit -> bundle.

Stage 1 trains one-step prediction; stage 2 fine-tunes on K-step rollouts with gradients through the whole
rollout (a curriculum of growing K, one epoch each), which is what teaches the model not to drift. Each
epoch ends with validation in physical units per lead; the best weights by validation go into the bundle.
A `max_minutes` budget ends the run cleanly: it validates what it has and writes the bundle.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fno_forecast.bundle import save_bundle
from fno_forecast.data.grid import latitude_weight_tensor
from fno_forecast.lead_calibration import LeadCalibration
from fno_forecast.models.registry import resolve_defaults, tensor_state_dict
from fno_forecast.models.stepper import build_stepper
from fno_forecast.rollout import Unroller
from fno_forecast.training import distributed
from fno_forecast.training.budget import (
    calibration_plan,
    fit_sample_cost,
    initial_plan,
    kept_inits,
    replan_rollouts,
)
from fno_forecast.training.calibration_fit import calibration_windows, fit_calibration
from fno_forecast.training.checkpoint import Progress, load_checkpoint, restore_rng, save_checkpoint
from fno_forecast.training.config import TrainConfig, build_config
from fno_forecast.training.data_setup import TrainingData, WindowCache, load_training_data
from fno_forecast.training.defaults import Choice, describe_choices
from fno_forecast.training.epoch import epoch_line, epoch_record, pick_device, to_device, train_pass
from fno_forecast.training.gradients import clip_gradients
from fno_forecast.training.loss import channel_loss_weights, weighted_mse
from fno_forecast.training.metadata import training_metadata
from fno_forecast.training.schedule import LearningRate, n_batches
from fno_forecast.training.validation import ValidationResult, validate


@dataclass(frozen=True)
class TrainResult:
    bundle_path: Path
    best: ValidationResult | None
    progress: Progress
    stopped_by_budget: bool


class Trainer:
    """One training run: `Trainer(config, data_path=..., out_dir=...).fit(...)`."""

    def __init__(
        self,
        config: TrainConfig,
        *,
        data_path: str,
        out_dir: Path,
        quiet: bool = False,
        explicit: frozenset[str] | None = None,
        max_minutes: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`explicit`: the keys the user set (None: all of them); the others are derived from the data
        (`training.defaults`), and with `max_minutes` the epoch plan is sized to the budget."""
        self.out_dir = Path(out_dir)
        self.quiet = quiet
        self.device = pick_device(config)
        self.dist = distributed.init_distributed(self.device.type)
        if self.device.type == "cuda":
            self.device = torch.device("cuda", self.dist.local_rank)
        if config.num_threads:
            torch.set_num_threads(config.num_threads)
        self.data: TrainingData = load_training_data(data_path, config, explicit=explicit)
        config = self.data.config or config
        self.config = config
        self.choices: list[Choice] = list(self.data.choices)
        self.data_path = data_path
        schema = self.data.channels.schema
        self.model_config = resolve_defaults(config.model_config(), schema.grid)
        torch.manual_seed(config.seed)
        self.stepper = build_stepper(
            model_name=config.model,
            model_config=self.model_config,
            grid_lat=schema.grid.lat,
            grid_lon=schema.grid.lon,
            step_hours=schema.step_hours,
            mean=self.data.stats.mean,
            std=self.data.stats.std,
            tendency_std=self.data.stats.tendency_std,
            use_history=config.use_history,
            climatology=self.data.climatology if config.use_climatology else None,
            relaxation=self.data.relaxation,
            spectral_prior=None if self.data.spectral_prior is None else self.data.spectral_prior.packed(),
            conservation=self.data.conservation,
        ).to(self.device)
        self.unroller: nn.Module = Unroller(self.stepper, checkpointing=config.activation_checkpointing)
        if config.compile:
            self.stepper.network = torch.compile(self.stepper.network)  # type: ignore[assignment]
        if self.dist.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.unroller = nn.parallel.DistributedDataParallel(self.unroller, device_ids=ids)
        self.windows = WindowCache(
            self.data,
            use_history=config.use_history,
            in_memory_limit_bytes=int(config.max_in_memory_gb * 2**30),
        )
        self.lead_steps = self.data.lead_steps(config.val_leads_hours)
        self.lat_weights = latitude_weight_tensor(schema.grid.lat).to(self.device)
        self.channel_weights = channel_loss_weights(
            schema.channels,
            channel_weights=config.channel_weights,
            variable_weights=config.variable_weight_map(),
            level_weighting=config.level_weighting,
        ).to(self.device)
        self.autocast = torch.bfloat16 if (self.device.type == "cuda" and config.bf16) else None
        plan_keys = {"stage1_epochs", "samples_per_epoch", "rollout_steps", "rollout_samples_per_epoch"}
        self._curriculum = tuple(config.rollout_steps)
        self._replan_budget_s = 0.0  # > 0: re-plan stage 2 from stage 1's measured cost (a derived plan)
        self._derived_val_stride = explicit is not None and "val_init_stride" not in explicit
        self._derived_cal_stride = explicit is not None and "calibration_init_stride" not in explicit
        if max_minutes and explicit is not None and not plan_keys & explicit:
            self._plan_for_budget(max_minutes * 60.0, clock)
            self._replan_budget_s = max_minutes * 60.0
        config = self.config
        if self.choices or self.data.corrections:
            self._log(describe_choices(self.choices, self.data.corrections))
        stage1 = config.stage1_epochs * self._batches_for(1)
        stage2 = sum(self._batches_for(k) for k in config.rollout_steps)
        self.schedule = LearningRate(config, stage1_steps=stage1, stage2_steps=stage2)
        # foreach: one multi-tensor update instead of a Python loop over parameters (the default on CPU);
        # `fused` would be faster still but refuses the complex spectral weights.
        self.optimizer = torch.optim.AdamW(
            self.stepper.network.parameters(), lr=config.lr, weight_decay=config.weight_decay, foreach=True
        )
        # the schedule is looked up at each step: stage 2 may be re-planned once stage 1 has been timed
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: self.schedule.factor(step)
        )

    def _plan_for_budget(self, budget_s: float, clock: Callable[[], float]) -> None:
        """Time a few one-step batches on a copy of the stepper, then size the epochs to the budget."""
        dataset = self.windows.train(1)
        batch = dataset.batch(list(range(min(self.config.batch_size, len(dataset)))))
        self.config, choice = initial_plan(
            self.config,
            stepper=self.stepper,
            batch=to_device(batch, self.device),
            windows=self.windows,
            lead_steps=self.lead_steps,
            budget_s=budget_s,
            clock=clock,
            thin_validation=self._derived_val_stride,
        )
        self.choices.append(choice)

    def _replan_rollouts(self, run: _Run, *, remaining_s: float) -> None:
        """Stage 2 sized to the budget left at the cost training measured (after stage 1, and again after
        stage 2's first epoch); its schedule follows the plan."""
        done = tuple(self.config.rollout_steps[: run.progress.epoch - self.config.stage1_epochs])
        curriculum = self._curriculum
        if done:  # the rest of the curriculum (its longest rollout repeated when that was its only one)
            curriculum = curriculum[1:] or curriculum[-1:]
        self.config, choice = replan_rollouts(
            self.config,
            cost=fit_sample_cost(run.epoch_costs),
            validation_s=run.val_seconds,
            remaining_s=remaining_s,
            budget_s=self._replan_budget_s,
            windows=self.windows,
            curriculum=curriculum,
            done=done,
        )
        stage2 = sum(self._batches_for(k) for k in self.config.rollout_steps)
        self.schedule = LearningRate(
            self.config, stage1_steps=self.schedule.stage1_steps, stage2_steps=stage2
        )
        self.choices.append(choice)
        self._log(f"{choice.key}: {choice.value} ({choice.why})")

    def _size_calibration(self, run: _Run, *, remaining_s: float) -> None:
        """The lead calibration's inits thinned to what the budget has left after the skill guard's pass
        (about one validation pass), at the cost per init the validation passes measured."""
        if not self.config.lead_calibration:
            return
        longest = max(self.lead_steps)
        dataset, _ = calibration_windows(self.windows, longest)
        validated = kept_inits(len(self.windows.validation(longest)), self.config.val_init_stride)
        validated_here = max(validated / self.dist.world_size, 1.0)  # validation splits its inits by rank
        self.config, choice = calibration_plan(
            self.config,
            n_inits=len(dataset),
            seconds_per_init=run.val_seconds / validated_here,
            allowance_s=remaining_s - run.val_seconds,
            steps_per_day=24.0 / self.data.step_hours,
        )
        if choice is not None:
            self.choices.append(choice)
            self._log(f"{choice.key}: {choice.value} ({choice.why})")

    def _batches_for(self, steps: int) -> int:
        cap = self.config.rollout_samples_per_epoch if steps > 1 else self.config.samples_per_epoch
        return n_batches(
            n_windows=len(self.windows.train(steps)),
            batch_size=self.config.batch_size,
            world_size=self.dist.world_size,
            cap=cap,
        )

    def _network_state(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu().clone() for k, v in tensor_state_dict(self._plain_network()).items()}

    def _plain_network(self) -> nn.Module:
        network = self.stepper.network
        return getattr(network, "_orig_mod", network)

    def _log(self, text: str) -> None:
        if self.dist.is_main and not self.quiet:
            print(text, flush=True)

    def _validate(self) -> ValidationResult:
        return validate(
            self.stepper,
            self.windows.validation(max(self.lead_steps)),
            lead_steps=self.lead_steps,
            step_hours=self.data.step_hours,
            channel_names=self.data.channels.schema.channel_names,
            lat_weights=self.lat_weights,
            batch_size=self.config.val_batch_size,
            init_stride=self.config.val_init_stride,
            device=self.device,
            dist_info=self.dist,
            autocast_dtype=self.autocast,
        )

    def _fit_calibration(self) -> LeadCalibration | None:
        """The selected model's lead calibration, fitted out of sample (`training.calibration_fit`)."""
        return fit_calibration(
            self.stepper,
            data=self.data,
            windows=self.windows,
            config=self.config,
            lead_steps=self.lead_steps,
            lat_weights=self.lat_weights,
            device=self.device,
        )

    def _checkpoint(self, progress: Progress, best: dict[str, torch.Tensor] | None) -> None:
        if self.dist.is_main:
            save_checkpoint(
                self.out_dir,
                network=self._network_state(),
                best_network=best,
                optimizer=self.optimizer.state_dict(),
                scheduler=self.scheduler.state_dict(),
                progress=progress,
                config=self.config.to_dict(),
            )
        distributed.barrier(self.dist)

    def _train_step(self, batch: dict[str, torch.Tensor], steps: int) -> float:
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

    def fit(
        self,
        *,
        resume: bool = False,
        max_minutes: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> TrainResult:
        """Train, validate each epoch, write the bundle. `clock` (seconds) times the budget; tests pass
        their own so that where a budget ends does not depend on the machine's speed."""
        from fno_forecast.training.progress import MetricsLog

        self.out_dir.mkdir(parents=True, exist_ok=True)
        run = self._start(resume)
        metrics = MetricsLog(self.out_dir, enabled=self.dist.is_main)
        started = clock()
        budget = None if max_minutes is None else max_minutes * 60.0

        def over_budget() -> bool:
            return budget is not None and clock() - started + run.val_seconds > budget

        if run.progress.global_step == 0 and self.stepper.prior != "none":
            self._validate_prior(run, metrics, clock)
        while run.progress.epoch < self.config.total_epochs and not run.stopped:
            self._train_epoch(run, metrics, clock=clock, over_budget=over_budget)
            first = self.config.stage1_epochs
            replan_at = (first, first + 1) if self.config.rollout_steps else (first,)
            measured = bool(run.epoch_costs)  # a run resumed at that point keeps its plan
            if self._replan_budget_s and run.progress.epoch in replan_at and measured and not run.stopped:
                self._replan_rollouts(run, remaining_s=self._replan_budget_s - (clock() - started))
        run.progress = replace(run.progress, finished=not run.stopped)
        self._checkpoint(run.progress, run.best_state)
        metrics.close()
        if run.best_state is not None:
            self._plain_network().load_state_dict(run.best_state)
        if run.best_result is None and run.best_state is not None:
            run.best_result = self._validate()
        if budget is not None and self._derived_cal_stride and run.val_seconds > 0:
            self._size_calibration(run, remaining_s=budget - (clock() - started))
        bundle_path = self.out_dir / "model"
        if self.dist.is_main:
            self._write_bundle(
                bundle_path, run.best_result, run.progress, run.stopped, self._fit_calibration()
            )
        distributed.barrier(self.dist)
        return TrainResult(bundle_path, run.best_result, run.progress, run.stopped)

    def _start(self, resume: bool) -> _Run:
        """A fresh run, or the checkpoint's when resuming (network, optimiser, scheduler, RNG restored)."""
        state = load_checkpoint(self.out_dir) if resume else None
        if state is None:
            return _Run(progress=Progress())
        self._plain_network().load_state_dict(state["network"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        restore_rng(state)
        progress = state["progress"]
        self._log(f"resuming at epoch {progress.epoch + 1}, step {progress.step_in_epoch}")
        return _Run(progress=progress, best_state=state["best_network"])

    def _validate_prior(self, run: _Run, metrics: Any, clock: Callable[[], float]) -> None:
        """The untrained stepper is its prior: a candidate the training must beat."""
        val_start = clock()
        result = self._validate()
        run.val_seconds = clock() - val_start
        run.best_state, run.best_result = self._network_state(), result
        run.progress = replace(run.progress, best_score=result.score, best_epoch=-1)
        metrics.write(
            {
                "epoch": 0,
                "stage": 0,
                "val_rmse": result.rmse,
                "val_score": result.score,
                "val_seconds": run.val_seconds,
                "global_step": 0,
            }
        )
        what = {"damped": "damped anomaly persistence", "linear_spectral": "linear spectral dynamics"}
        self._log(f"epoch 0 (prior: {what[self.stepper.prior]}) val {result.summary()}")

    def _train_epoch(
        self, run: _Run, metrics: Any, *, clock: Callable[[], float], over_budget: Callable[[], bool]
    ) -> None:
        """One epoch from where `run` stands (mid-epoch after a resume), then validation and a checkpoint."""
        c = self.config
        stage, steps = c.epoch_plan(run.progress.epoch)
        dataset = self.windows.train(steps)  # built (and read into memory) before the epoch is timed
        epoch_start = clock()

        def after_step(progress: Progress) -> bool:
            run.progress = progress
            if c.checkpoint_every_steps and progress.global_step % c.checkpoint_every_steps == 0:
                self._checkpoint(progress, run.best_state)
            return distributed.any_rank(over_budget(), self.dist, self.device)

        self.stepper.train()
        done = train_pass(
            dataset,
            config=c,
            steps=steps,
            progress=run.progress,
            dist=self.dist,
            device=self.device,
            train_step=self._train_step,
            after_step=after_step,
            show=self.dist.is_main and not self.quiet,
        )
        run.progress, run.stopped = done.progress, run.stopped or done.stopped
        train_seconds = clock() - epoch_start
        run.epoch_costs.append((steps, done.samples, train_seconds))
        val_start = clock()
        result = self._validate()
        run.val_seconds = clock() - val_start
        if result.score < run.progress.best_score:
            run.best_state, run.best_result = self._network_state(), result
            run.progress = replace(run.progress, best_score=result.score, best_epoch=run.progress.epoch)
        done_epoch = run.progress.epoch
        if not run.stopped:
            run.progress = replace(run.progress, epoch=run.progress.epoch + 1, step_in_epoch=0)
        run.progress = replace(
            run.progress, elapsed_seconds=run.progress.elapsed_seconds + clock() - epoch_start
        )
        record = epoch_record(
            done,
            epoch=done_epoch + 1,
            stage=stage,
            steps=steps,
            result=result,
            lr=self.optimizer.param_groups[0]["lr"],
            train_seconds=train_seconds,
            val_seconds=run.val_seconds,
            progress=run.progress,
        )
        metrics.write(record)
        self._log(
            epoch_line(record, total_epochs=c.total_epochs, summary=result.summary(), stopped=run.stopped)
        )
        self._checkpoint(run.progress, run.best_state)

    def _write_bundle(
        self,
        path: Path,
        best: ValidationResult | None,
        progress: Progress,
        stopped: bool,
        calibration: LeadCalibration | None,
    ) -> None:
        network = self._plain_network()
        stepper = copy.deepcopy(self.stepper).cpu()
        stepper.network = network.cpu() if self.device.type == "cpu" else copy.deepcopy(network).cpu()
        metadata = training_metadata(
            config=self.config,
            model_config=self.model_config,
            data=self.data,
            data_path=self.data_path,
            choices=self.choices,
            best=best,
            progress=progress,
            stopped=stopped,
            calibration=calibration,
        )
        save_bundle(path, stepper=stepper, metadata=metadata, climatology=self.data.climatology)


@dataclass
class _Run:
    """Where a run stands between epochs: progress, the best weights so far and their validation."""

    progress: Progress
    best_state: dict[str, torch.Tensor] | None = None
    best_result: ValidationResult | None = None
    val_seconds: float = 0.0
    stopped: bool = False
    # per epoch trained so far: (K, samples, seconds of training), what the budget's re-plans read
    epoch_costs: list[tuple[int, int, float]] = field(default_factory=list)


def train(
    config: TrainConfig,
    *,
    data_path: str,
    out_dir: Path,
    resume: bool = False,
    max_minutes: float | None = None,
    quiet: bool = False,
    clock: Callable[[], float] = time.monotonic,
    explicit: frozenset[str] | None = None,
) -> TrainResult:
    """Train a model on `data_path` and write `out_dir/model` (plus checkpoint and metrics.jsonl).

    `explicit` names the keys the user set; the others are derived from the data (None: derive none).
    Resuming reuses the resolved config of the checkpoint, so the plan it started with."""
    if resume:
        state = load_checkpoint(Path(out_dir))
        if state is not None:
            config, explicit = build_config(state["config"], source="checkpoint"), None
    trainer = Trainer(
        config,
        data_path=data_path,
        out_dir=out_dir,
        quiet=quiet,
        explicit=explicit,
        max_minutes=max_minutes,
        clock=clock,
    )
    try:
        return trainer.fit(resume=resume, max_minutes=max_minutes, clock=clock)
    finally:
        distributed.shutdown(trainer.dist)
