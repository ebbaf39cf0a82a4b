"""One pass of training over an epoch's batches: the loader, the steps, the progress bar, the data wait.

The trainer (`training.loop`) owns what happens around a pass: the plan of epochs, validation, the best
weights, checkpoints and the budget. A pass resumes mid-epoch from `progress.step_in_epoch`, and asks
`after_step` after each step whether to stop (the budget, on any rank).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch

from fno_forecast.data.windows import WindowDataset
from fno_forecast.training.checkpoint import Progress
from fno_forecast.training.config import TrainConfig
from fno_forecast.training.distributed import DistInfo
from fno_forecast.training.schedule import epoch_batches


def pick_device(config: TrainConfig) -> torch.device:
    """CUDA when asked for, or when `auto` finds a GPU; else the CPU."""
    if config.device == "cuda" or (config.device == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


def to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """A batch on `device` (pinned, non-blocking copies to a GPU)."""
    if device.type != "cuda":
        return batch
    return {k: v.pin_memory().to(device, non_blocking=True) for k, v in batch.items()}


def auto_workers() -> int:
    """Loader processes for streamed windows: half the cores (the rest compute), 1 to 4."""
    return max(1, min(4, (os.cpu_count() or 2) // 2))


@dataclass(frozen=True)
class PassResult:
    """What a pass did: its losses, the samples it saw (all ranks), where it stands, and the data wait."""

    losses: list[float]
    samples: int
    progress: Progress
    stopped: bool
    waited: float  # wall seconds blocked on the next batch
    wall_seconds: float


def train_pass(
    dataset: WindowDataset,
    *,
    config: TrainConfig,
    steps: int,
    progress: Progress,
    dist: DistInfo,
    device: torch.device,
    train_step: Callable[[dict[str, torch.Tensor], int], float],
    after_step: Callable[[Progress], bool],
    show: bool,
) -> PassResult:
    """Train on this epoch's batches from `progress.step_in_epoch` on; `after_step(progress)` returning
    True stops the pass (it has then recorded the progress, e.g. for a checkpoint)."""
    from fno_forecast.training.progress import EpochBar

    batches = epoch_batches(
        n_windows=len(dataset),
        epoch=progress.epoch,
        seed=config.seed,
        batch_size=config.batch_size,
        rank=dist.rank,
        world_size=dist.world_size,
        cap=config.rollout_samples_per_epoch if steps > 1 else config.samples_per_epoch,
    )
    first = progress.step_in_epoch
    bar = EpochBar(len(batches), epoch=progress.epoch, enabled=show)
    bar.update(first)
    losses: list[float] = []
    samples, stopped = 0, False
    # data wait: wall time blocked on the next batch, against the pass's wall time (not the budget's
    # clock, which tests drive reading by reading)
    waited, wall_start = 0.0, time.perf_counter()
    workers = config.loader_workers
    if workers < 0:
        workers = 0 if dataset.in_memory else auto_workers()
    stream = dataset.batches(batches[first:], workers=workers, prefetch=config.prefetch_batches)
    for index in range(first, len(batches)):
        asked = time.perf_counter()
        batch = next(stream)
        waited += time.perf_counter() - asked
        losses.append(train_step(batch, steps))
        samples += len(batches[index]) * dist.world_size
        progress = replace(progress, step_in_epoch=index + 1, global_step=progress.global_step + 1)
        bar.update(1, loss=losses[-1])
        if after_step(progress):
            stopped = True
            break
    stream.close()
    bar.close()
    return PassResult(losses, samples, progress, stopped, waited, time.perf_counter() - wall_start)


def epoch_record(
    done: PassResult,
    *,
    epoch: int,
    stage: int,
    steps: int,
    result: Any,
    lr: float,
    train_seconds: float,
    val_seconds: float,
    progress: Progress,
) -> dict[str, Any]:
    """The `metrics.jsonl` line of an epoch: its pass, its validation (`ValidationResult`) and timings."""
    return {
        "epoch": epoch,
        "stage": stage,
        "unrolled_steps": steps,
        "train_loss": sum(done.losses) / max(len(done.losses), 1),
        "val_rmse": result.rmse,
        "val_score": result.score,
        "lr": lr,
        "samples_per_s": done.samples / max(train_seconds, 1e-9),
        "data_wait_fraction": done.waited / max(done.wall_seconds, 1e-9),
        "val_seconds": val_seconds,
        "elapsed_s": progress.elapsed_seconds,
        "global_step": progress.global_step,
    }


def epoch_line(
    record: dict[str, Any], *, total_epochs: int, summary: str, stopped: bool, kept_s: float = 0.0
) -> str:
    """The line `train` prints after an epoch; `kept_s`: the seconds of the budget kept for what follows
    training (`RunPlanner.after_training_s`)."""
    kept = f", {kept_s:.0f} s of it kept for what follows training" if kept_s else ""
    return (
        f"epoch {record['epoch']}/{total_epochs} stage {record['stage']} K={record['unrolled_steps']} "
        f"loss {record['train_loss']:.4f} val {summary} | {record['samples_per_s']:.0f} samples/s "
        f"(data wait {record['data_wait_fraction']:.0%}) {record['elapsed_s']:.0f}s"
        + (f" (budget reached{kept})" if stopped else "")
    )
