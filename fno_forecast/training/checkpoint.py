"""Training checkpoints for exact resume, written atomically and read without unpickling code.

A checkpoint holds everything the next optimiser step depends on: network weights, optimiser and
scheduler state, the progress counters (epoch, step within the epoch, global step), the best weights and
score so far, and the torch RNG states. Data order needs no saved state: each epoch's permutation is a
pure function of `(seed, epoch)`, and a resumed epoch skips the batches it had already done.

Files are `torch.save` dictionaries of tensors and plain numbers, loaded with `weights_only=True`.
"""

from __future__ import annotations

import io
import pickle
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from fno_forecast.errors import ConfigError
from fno_forecast.output import write_bytes_atomic
from fno_forecast.training.validation import ValidationResult

CHECKPOINT_FILE = "checkpoint.pt"


@dataclass(frozen=True)
class Progress:
    """Where a run stands. `step_in_epoch` batches of epoch `epoch` are done; `global_step` in total."""

    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0
    best_score: float = float("inf")
    best_epoch: int = -1
    elapsed_seconds: float = 0.0
    finished: bool = False


@dataclass
class RunState:
    """Where a run stands between epochs: progress, the best weights so far and their validation."""

    progress: Progress
    best_state: dict[str, torch.Tensor] | None = None
    best_result: ValidationResult | None = None
    val_seconds: float = 0.0
    stopped: bool = False
    # per epoch trained so far: (K, samples, seconds of training), what the budget's re-plans read
    epoch_costs: list[tuple[int, int, float]] = field(default_factory=list)


def save_checkpoint(
    directory: Path,
    *,
    network: dict[str, torch.Tensor],
    best_network: dict[str, torch.Tensor] | None,
    optimizer: dict[str, Any],
    scheduler: dict[str, Any],
    progress: Progress,
    config: dict[str, Any],
) -> Path:
    """Write `directory/checkpoint.pt` atomically and return its path."""
    state = {
        "network": network,
        "best_network": best_network,
        "optimizer": optimizer,
        "scheduler": scheduler,
        "progress": asdict(progress),
        "config": config,
        "rng_cpu": torch.get_rng_state(),
        "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    buffer = io.BytesIO()
    torch.save(state, buffer)
    path = Path(directory) / CHECKPOINT_FILE
    write_bytes_atomic(path, buffer.getvalue())
    return path


def load_checkpoint(directory: Path) -> dict[str, Any] | None:
    """The checkpoint of `directory` (None when there is none), loaded with `weights_only=True`."""
    path = Path(directory) / CHECKPOINT_FILE
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, ValueError, OSError, pickle.UnpicklingError) as error:
        # A truncated zip raises OSError; weights_only refuses pickled objects with UnpicklingError.
        raise ConfigError(f"{path}: cannot resume from this checkpoint ({error})") from error
    state["progress"] = Progress(**state["progress"])
    return state


def restore_rng(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["rng_cpu"])
    if torch.cuda.is_available() and state.get("rng_cuda"):
        torch.cuda.set_rng_state_all(state["rng_cuda"])
