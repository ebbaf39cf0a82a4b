"""The training loop: setup -> fit -> bundle.

Stage 1 trains one-step prediction; stage 2 fine-tunes on K-step rollouts with gradients through the whole
rollout (a curriculum of growing K, one epoch each), which is what teaches the model not to drift. Each
epoch ends with validation in physical units per lead; the best weights by validation go into the bundle.
A `max_minutes` budget, counted from the start of the setup, ends the run cleanly: it validates what it has
and writes the bundle.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fno_forecast.bundle import save_bundle
from fno_forecast.data.grid import latitude_weight_tensor
from fno_forecast.errors import ConfigError
from fno_forecast.lead_calibration import LeadCalibration
from fno_forecast.models.registry import resolve_defaults, tensor_state_dict
from fno_forecast.rollout import Unroller
from fno_forecast.training import distributed
from fno_forecast.training.calibration_fit import fit_calibration
from fno_forecast.training.checkpoint import Progress, RunState, load_checkpoint, restore_rng, save_checkpoint
from fno_forecast.training.config import TrainConfig, build_config
from fno_forecast.training.data_setup import TrainingData, WindowCache, load_training_data
from fno_forecast.training.defaults import Choice, describe_choices
from fno_forecast.training.epoch import epoch_line, epoch_record, pick_device, train_pass
from fno_forecast.training.loss import channel_loss_weights
from fno_forecast.training.metadata import training_metadata
from fno_forecast.training.run_plan import RunPlanner
from fno_forecast.training.update import WeightUpdate
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
        (`training.defaults`), and with `max_minutes` the epoch plan is sized to the budget, which
        counts from here: reading the data and fitting the statistics and corrections spend it too (on
        a big store that is minutes)."""
        self.started = clock()
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
        self.stepper = self.data.stepper(config, self.model_config).to(self.device)
        unroller: nn.Module = Unroller(self.stepper, checkpointing=config.activation_checkpointing)
        if config.compile:
            self.stepper.network = torch.compile(self.stepper.network)  # type: ignore[assignment]
        if self.dist.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            unroller = nn.parallel.DistributedDataParallel(unroller, device_ids=ids)
        self.windows = WindowCache(
            self.data,
            use_history=config.use_history,
            in_memory_limit_bytes=int(config.max_in_memory_gb * 2**30),
        )
        self.lead_steps = self.data.lead_steps(config.val_leads_hours)
        self.lat_weights = latitude_weight_tensor(schema.grid.lat).to(self.device)
        channel_weights = channel_loss_weights(
            schema.channels,
            channel_weights=config.channel_weights,
            variable_weights=config.variable_weight_map(),
            level_weighting=config.level_weighting,
        ).to(self.device)
        autocast = torch.bfloat16 if (self.device.type == "cuda" and config.bf16) else None
        plan_keys = {"stage1_epochs", "samples_per_epoch", "rollout_steps", "rollout_samples_per_epoch"}
        self.planner = RunPlanner(
            windows=self.windows,
            lead_steps=self.lead_steps,
            world_size=self.dist.world_size,
            steps_per_day=24.0 / self.data.step_hours,
            curriculum=tuple(config.rollout_steps),
            derived_val_stride=explicit is not None and "val_init_stride" not in explicit,
            derived_cal_stride=explicit is not None and "calibration_init_stride" not in explicit,
        )
        if max_minutes and explicit is not None and not plan_keys & explicit:
            # the epochs sized to the budget from a few timed batches; stage 2 re-planned as it goes
            left_s = max(max_minutes * 60.0 - (clock() - self.started), 0.0)  # after the setup
            config, choice = self.planner.initial(
                config, stepper=self.stepper, device=self.device, budget_s=left_s, clock=clock
            )
            self.choices.append(choice)
        self.config = config
        if self.choices or self.data.corrections:
            self._log(describe_choices(self.choices, self.data.corrections))
        self.update = WeightUpdate(
            stepper=self.stepper,
            unroller=unroller,
            config=config,
            lat_weights=self.lat_weights,
            channel_weights=channel_weights,
            device=self.device,
            autocast=autocast,
            stage1_steps=config.stage1_epochs * self.planner.batches_for(config, 1),
            stage2_steps=self.planner.stage2_steps(config),
        )
        self.autocast = autocast

    def _replan(self, config: TrainConfig, choice: Choice | None) -> None:
        """A plan made during the run: the new config, its schedule, and why on the terminal."""
        self.config = config
        if choice is not None:
            self.update.replan(config, stage2_steps=self.planner.stage2_steps(config))
            self.choices.append(choice)
            self._log(f"{choice.key}: {choice.value} ({choice.why})")

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

    def _checkpoint(self, progress: Progress, best: dict[str, torch.Tensor] | None) -> None:
        if self.dist.is_main:
            save_checkpoint(
                self.out_dir,
                network=self._network_state(),
                best_network=best,
                optimizer=self.update.optimizer.state_dict(),
                scheduler=self.update.scheduler.state_dict(),
                progress=progress,
                config=self.config.to_dict(),
            )
        distributed.barrier(self.dist)

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
        started = self.started  # the setup counts
        budget = None if max_minutes is None else max_minutes * 60.0

        def over_budget() -> bool:  # what the run does after training counts too
            return budget is not None and self.planner.stops_training(
                self.config, elapsed_s=clock() - started, validation_s=run.val_seconds, budget_s=budget
            )

        if run.progress.global_step == 0 and self.stepper.prior != "none":
            self._validate_prior(run, metrics, clock)
        while run.progress.epoch < self.config.total_epochs and not run.stopped:
            self._train_epoch(run, metrics, clock=clock, over_budget=over_budget)
            first = self.config.stage1_epochs
            replan_at = (first, first + 1) if self.config.rollout_steps else (first,)
            measured = bool(run.epoch_costs)  # a run resumed at that point keeps its plan
            sized = self.planner.budget_s > 0  # the epochs were sized to the budget
            if (
                budget is not None
                and sized
                and run.progress.epoch in replan_at
                and measured
                and not run.stopped
            ):
                remaining_s = budget - (clock() - started)
                self._replan(
                    *self.planner.rollouts(
                        self.config,
                        epoch=run.progress.epoch,
                        epoch_costs=run.epoch_costs,
                        validation_s=run.val_seconds,
                        remaining_s=remaining_s,
                    )
                )
        run.progress = replace(run.progress, finished=not run.stopped)
        self._checkpoint(run.progress, run.best_state)
        metrics.close()
        if run.best_state is not None:
            self._plain_network().load_state_dict(run.best_state)
        if run.best_result is None and run.best_state is not None:
            run.best_result = self._validate()
        if budget is not None:
            remaining_s = budget - (clock() - started)
            self._replan(
                *self.planner.calibration(self.config, validation_s=run.val_seconds, remaining_s=remaining_s)
            )
        bundle_path = self.out_dir / "model"
        if self.dist.is_main:  # the selected model's lead calibration, fitted out of sample
            calibration = fit_calibration(
                self.stepper,
                data=self.data,
                windows=self.windows,
                config=self.config,
                lead_steps=self.lead_steps,
                lat_weights=self.lat_weights,
                device=self.device,
            )
            self._write_bundle(bundle_path, run.best_result, run.progress, run.stopped, calibration)
        distributed.barrier(self.dist)
        return TrainResult(bundle_path, run.best_result, run.progress, run.stopped)

    def _start(self, resume: bool) -> RunState:
        """A fresh run, or the checkpoint's when resuming (network, optimiser, scheduler, RNG restored)."""
        state = load_checkpoint(self.out_dir) if resume else None
        if state is None:
            return RunState(progress=Progress())
        self._plain_network().load_state_dict(state["network"])
        self.update.optimizer.load_state_dict(state["optimizer"])
        self.update.scheduler.load_state_dict(state["scheduler"])
        restore_rng(state)
        progress = state["progress"]
        self._log(f"resuming at epoch {progress.epoch + 1}, step {progress.step_in_epoch}")
        return RunState(progress=progress, best_state=state["best_network"])

    def _validate_prior(self, run: RunState, metrics: Any, clock: Callable[[], float]) -> None:
        """The untrained stepper is its prior: a candidate the training must beat."""
        val_start = clock()
        result = self._validate()
        run.val_seconds = clock() - val_start
        run.best_state, run.best_result = self._network_state(), result
        run.progress = replace(run.progress, best_score=result.score, best_epoch=-1)
        record = {"epoch": 0, "stage": 0, "val_rmse": result.rmse, "val_score": result.score}
        metrics.write(record | {"val_seconds": run.val_seconds, "global_step": 0})
        what = {"damped": "damped anomaly persistence", "linear_spectral": "linear spectral dynamics"}
        self._log(f"epoch 0 (prior: {what[self.stepper.prior]}) val {result.summary()}")

    def _train_epoch(
        self, run: RunState, metrics: Any, *, clock: Callable[[], float], over_budget: Callable[[], bool]
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
            train_step=self.update,
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
            lr=self.update.lr,
            train_seconds=train_seconds,
            val_seconds=run.val_seconds,
            progress=run.progress,
        )
        metrics.write(record)
        self._log(
            epoch_line(
                record,
                total_epochs=c.total_epochs,
                summary=result.summary(),
                stopped=run.stopped,
                kept_s=self.planner.reserved_s,
            )
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
        linear = None if calibration is None else calibration.linear
        save_bundle(
            path, stepper=stepper, metadata=metadata, climatology=self.data.climatology, linear=linear
        )


def _refuse_changed_keys(
    stored: TrainConfig, asked: TrainConfig, *, keys: frozenset[str], where: Path
) -> None:
    """A resumed run keeps the config it started with: a key set to another value is an error."""
    changed = sorted(key for key in keys if getattr(stored, key) != getattr(asked, key))
    if changed:
        values = ", ".join(
            f"{key} = {getattr(asked, key)!r} (the run has {getattr(stored, key)!r})" for key in changed
        )
        raise ConfigError(
            f"{where}: --resume keeps the config the run started with, and {values} differs; "
            "leave it unset or train into a new --out"
        )


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
    Resuming reuses the resolved config of the checkpoint, so the plan it started with; a key set
    (`explicit`) to another value than the checkpoint's is refused, not silently dropped."""
    if resume:
        state = load_checkpoint(Path(out_dir))
        if state is not None:
            stored = build_config(state["config"], source="checkpoint")
            where = Path(out_dir) / "checkpoint.pt"
            _refuse_changed_keys(stored, config, keys=explicit or frozenset(), where=where)
            config, explicit = stored, None
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
