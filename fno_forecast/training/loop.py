"""The training loop: setup -> fit -> bundle.

Stage 1 trains one-step prediction; stage 2 fine-tunes on K-step rollouts with gradients through the whole
rollout (a curriculum of growing K, one epoch each), which is what teaches the model not to drift. Each
epoch ends with validation in physical units per lead; the best weights by validation go into the bundle.
A `max_minutes` budget ends the run cleanly: it validates what it has and writes the bundle.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fno_forecast.bundle import save_bundle
from fno_forecast.data.grid import latitude_weight_tensor
from fno_forecast.lead_calibration import LeadCalibration, fit_lead_calibration
from fno_forecast.models.registry import model_config_to_dict, resolve_defaults, tensor_state_dict
from fno_forecast.models.stepper import build_stepper
from fno_forecast.rollout import Unroller
from fno_forecast.training import distributed
from fno_forecast.training.budget import USABLE_FRACTION, plan_for_budget
from fno_forecast.training.checkpoint import Progress, load_checkpoint, restore_rng, save_checkpoint
from fno_forecast.training.config import TrainConfig, build_config
from fno_forecast.training.data_setup import TrainingData, WindowCache, load_training_data
from fno_forecast.training.defaults import Choice
from fno_forecast.training.gradients import clip_gradients
from fno_forecast.training.loss import channel_loss_weights, weighted_mse
from fno_forecast.training.schedule import LearningRate, epoch_batches, n_batches
from fno_forecast.training.validation import ValidationResult, validate


@dataclass(frozen=True)
class TrainResult:
    bundle_path: Path
    best: ValidationResult | None
    progress: Progress
    stopped_by_budget: bool


def pick_device(config: TrainConfig) -> torch.device:
    if config.device == "cuda" or (config.device == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


def _to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    if device.type != "cuda":
        return batch
    return {k: v.pin_memory().to(device, non_blocking=True) for k, v in batch.items()}


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
        if max_minutes and explicit is not None and not plan_keys & explicit:
            self._plan_for_budget(max_minutes * 60.0, clock)
        config = self.config
        self._print_choices()
        stage1 = config.stage1_epochs * self._batches_for(1)
        stage2 = sum(self._batches_for(k) for k in config.rollout_steps)
        self.schedule = LearningRate(config, stage1_steps=stage1, stage2_steps=stage2)
        # foreach: one multi-tensor update instead of a Python loop over parameters (the default on CPU);
        # `fused` would be faster still but refuses the complex spectral weights.
        self.optimizer = torch.optim.AdamW(
            self.stepper.network.parameters(), lr=config.lr, weight_decay=config.weight_decay, foreach=True
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self.schedule.factor)

    def _plan_for_budget(self, budget_s: float, clock: Callable[[], float]) -> None:
        """Time a few one-step batches on a copy of the stepper, then size the epochs to the budget."""
        c = self.config
        dataset = self.windows.train(1)
        probe = copy.deepcopy(self.stepper)
        probe.train()
        rng = torch.get_rng_state()
        batch = _to_device(dataset.batch(list(range(min(c.batch_size, len(dataset))))), self.device)
        timings = []
        for _ in range(3):
            start = clock()
            out = probe(batch["state"], time_hours=batch["time_hours"], previous=batch.get("previous"))
            ((out - batch["targets"][:, 0]) / probe.std).pow(2).mean().backward()
            timings.append(clock() - start)
        torch.set_rng_state(rng)
        del probe
        tau = min(timings[1:]) / max(batch["state"].shape[0], 1)
        longest = max(self.lead_steps)
        n_val = len(self.windows.validation(longest)) // max(c.val_init_stride, 1) + 1
        validation_s = n_val * longest * tau / 3.0
        plan = plan_for_budget(
            budget_s=budget_s,
            seconds_per_sample_step=tau,
            validation_s=validation_s,
            windows=lambda k: len(self.windows.train(k)),
            curriculum=tuple(c.rollout_steps),
            batch_size=c.batch_size,
        )
        self.config = replace(
            c,
            stage1_epochs=plan.stage1_epochs,
            samples_per_epoch=plan.samples_per_epoch,
            rollout_steps=plan.rollout_steps,
            rollout_samples_per_epoch=plan.rollout_samples_per_epoch,
        )
        self.choices.append(
            Choice(
                "epoch plan",
                plan.describe(),
                f"fills {USABLE_FRACTION:.0%} of the {budget_s / 60:g}-minute budget at a measured "
                f"{tau * 1e3:.2f} ms per sample-step (validation ~{validation_s:.0f} s)",
            )
        )

    def _print_choices(self) -> None:
        if not self.choices and not self.data.corrections:
            return
        lines = ["derived from the data (keys you set win; see `fno-forecast info` afterwards):"]
        for choice in self.choices:
            value = list(choice.value) if isinstance(choice.value, tuple) else choice.value
            lines.append(f"  {choice.key:<24} {value}  ({choice.why})")
        for name, decision in self.data.corrections.items():
            lines.append(f"  {name:<24} {'kept' if decision['kept'] else 'off'}  ({decision['why']})")
        self._log("\n".join(lines))

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
        """Per-lead anomaly factors of the selected model, from training-period rollouts."""
        if not self.config.lead_calibration:
            return None
        steps = max(self.lead_steps)
        return fit_lead_calibration(
            self.stepper,
            self.windows.train(steps),
            n_steps=steps,
            lat_weights=self.lat_weights,
            init_stride=self.config.calibration_init_stride,
            batch_size=self.config.val_batch_size,
            device=self.device,
            period=self.data.train_period,
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
        batch = _to_device(batch, self.device)
        targets = batch["targets"][:, :steps]
        with torch.autocast(
            self.device.type, dtype=self.autocast or torch.float32, enabled=self.autocast is not None
        ):
            predicted = self.unroller(batch["state"], batch["time_hours"], batch.get("previous"), steps)
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
        from fno_forecast.training.progress import EpochBar, MetricsLog

        self.out_dir.mkdir(parents=True, exist_ok=True)
        progress, best_state, best_result = Progress(), None, None
        state = load_checkpoint(self.out_dir) if resume else None
        if state is not None:
            self._plain_network().load_state_dict(state["network"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            restore_rng(state)
            progress, best_state = state["progress"], state["best_network"]
            self._log(f"resuming at epoch {progress.epoch + 1}, step {progress.step_in_epoch}")
        metrics = MetricsLog(self.out_dir, enabled=self.dist.is_main)
        started = clock()
        budget = None if max_minutes is None else max_minutes * 60.0
        val_seconds, stopped = 0.0, False
        c = self.config
        if progress.global_step == 0 and self.stepper.relaxation is not None:
            # The untrained stepper is the damped-persistence prior: a candidate the training must beat.
            val_start = clock()
            result = self._validate()
            val_seconds = clock() - val_start
            best_state, best_result = self._network_state(), result
            progress = replace(progress, best_score=result.score, best_epoch=-1)
            metrics.write(
                {
                    "epoch": 0,
                    "stage": 0,
                    "val_rmse": result.rmse,
                    "val_score": result.score,
                    "val_seconds": val_seconds,
                    "global_step": 0,
                }
            )
            self._log(f"epoch 0 (prior: damped anomaly persistence) val {result.summary()}")
        while progress.epoch < c.total_epochs and not stopped:
            stage, steps = c.epoch_plan(progress.epoch)
            dataset = self.windows.train(steps)
            batches = epoch_batches(
                n_windows=len(dataset),
                epoch=progress.epoch,
                seed=c.seed,
                batch_size=c.batch_size,
                rank=self.dist.rank,
                world_size=self.dist.world_size,
                cap=c.rollout_samples_per_epoch if steps > 1 else c.samples_per_epoch,
            )
            bar = EpochBar(len(batches), epoch=progress.epoch, enabled=self.dist.is_main and not self.quiet)
            bar.update(progress.step_in_epoch)
            epoch_start, losses, samples = clock(), [], 0
            # data wait: wall time blocked on the next batch, against the epoch's wall time (not `clock`,
            # which times the budget and which tests drive reading by reading)
            waited, wall_start = 0.0, time.perf_counter()
            self.stepper.train()
            workers = (
                c.loader_workers if c.loader_workers >= 0 else (0 if dataset.in_memory else _auto_workers())
            )
            stream = dataset.batches(
                batches[progress.step_in_epoch :], workers=workers, prefetch=c.prefetch_batches
            )
            for index in range(progress.step_in_epoch, len(batches)):
                asked = time.perf_counter()
                batch = next(stream)
                waited += time.perf_counter() - asked
                losses.append(self._train_step(batch, steps))
                samples += len(batches[index]) * self.dist.world_size
                progress = replace(progress, step_in_epoch=index + 1, global_step=progress.global_step + 1)
                bar.update(1, loss=losses[-1])
                if c.checkpoint_every_steps and progress.global_step % c.checkpoint_every_steps == 0:
                    self._checkpoint(progress, best_state)
                over = budget is not None and clock() - started + val_seconds > budget
                if distributed.any_rank(over, self.dist, self.device):
                    stopped = True
                    break
            stream.close()
            bar.close()
            wall_seconds = time.perf_counter() - wall_start
            train_seconds = clock() - epoch_start
            val_start = clock()
            result = self._validate()
            val_seconds = clock() - val_start
            if result.score < progress.best_score:
                best_state, best_result = self._network_state(), result
                progress = replace(progress, best_score=result.score, best_epoch=progress.epoch)
            done_epoch = progress.epoch
            if not stopped:
                progress = replace(progress, epoch=progress.epoch + 1, step_in_epoch=0)
            progress = replace(progress, elapsed_seconds=progress.elapsed_seconds + clock() - epoch_start)
            record = {
                "epoch": done_epoch + 1,
                "stage": stage,
                "rollout_steps": steps,
                "train_loss": sum(losses) / max(len(losses), 1),
                "val_rmse": result.rmse,
                "val_score": result.score,
                "lr": self.optimizer.param_groups[0]["lr"],
                "samples_per_s": samples / max(train_seconds, 1e-9),
                "data_wait_fraction": waited / max(wall_seconds, 1e-9),
                "val_seconds": val_seconds,
                "elapsed_s": progress.elapsed_seconds,
                "global_step": progress.global_step,
            }
            metrics.write(record)
            self._log(
                f"epoch {done_epoch + 1}/{c.total_epochs} stage {stage} K={steps} loss {record['train_loss']:.4f} "
                f"val {result.summary()} | {record['samples_per_s']:.0f} samples/s "
                f"(data wait {record['data_wait_fraction']:.0%}) {progress.elapsed_seconds:.0f}s"
                + (" (budget reached)" if stopped else "")
            )
            self._checkpoint(progress, best_state)
        progress = replace(progress, finished=not stopped)
        self._checkpoint(progress, best_state)
        metrics.close()
        if best_state is not None:
            self._plain_network().load_state_dict(best_state)
        if best_result is None and best_state is not None:
            best_result = self._validate()
        bundle_path = self.out_dir / "model"
        if self.dist.is_main:
            self._write_bundle(bundle_path, best_result, progress, stopped, self._fit_calibration())
        distributed.barrier(self.dist)
        return TrainResult(bundle_path, best_result, progress, stopped)

    def _write_bundle(
        self,
        path: Path,
        best: ValidationResult | None,
        progress: Progress,
        stopped: bool,
        calibration: LeadCalibration | None,
    ) -> None:
        from fno_forecast import __version__

        channels = self.data.channels
        metadata: dict[str, Any] = {
            "model": {"name": self.config.model, "config": model_config_to_dict(self.model_config)},
            "schema": channels.schema.to_dict(),
            "training": {
                "data": {
                    "paths": list(channels.paths) or [self.data_path],
                    "format": channels.source_format,
                    "time": channels.time.to_dict(),
                },
                "train_period": self.data.train_period,
                "val_period": self.data.val_period,
                "config": self.config.to_dict(),
                "best_epoch": progress.best_epoch + 1,
                "epochs_done": progress.epoch,
                "global_step": progress.global_step,
                "stopped_by_budget": stopped,
                "val_rmse": None if best is None else best.rmse,
                "val_inits": None if best is None else best.n_inits,
                "package_version": __version__,
            },
        }
        if self.data.recent_anomaly is not None:
            metadata["recent_anomaly"] = self.data.recent_anomaly.to_dict()
        if calibration is not None:
            metadata["lead_calibration"] = calibration.to_dict()
        stepper = copy.deepcopy(self.stepper).cpu()
        stepper.network = (
            self._plain_network().cpu()
            if self.device.type == "cpu"
            else copy.deepcopy(self._plain_network()).cpu()
        )
        corrections = dict(self.data.corrections)
        if calibration is not None:
            kept = calibration.kept
            total = len(calibration.factors) * calibration.n_channels
            corrections["lead_calibration"] = {
                "kept": kept > 0,
                "why": f"{kept} of {total} lead/channel factors beat the uncalibrated forecast on held-out "
                f"training inits (cross-fitted halves)",
            }
        metadata["training"]["choices"] = [choice.to_dict() for choice in self.choices]
        metadata["training"]["corrections"] = corrections
        save_bundle(path, stepper=stepper, metadata=metadata, climatology=self.data.climatology)


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


def _auto_workers() -> int:
    """Loader processes for streamed windows: half the cores (the rest compute), 1 to 4."""
    return max(1, min(4, (os.cpu_count() or 2) // 2))
