"""Progress output: a tqdm bar per epoch (only on a TTY), `metrics.jsonl`, TensorBoard when installed."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any


class EpochBar:
    """A tqdm bar over one epoch's batches; silent when disabled or when stderr is not a terminal."""

    def __init__(self, total: int, *, epoch: int, enabled: bool) -> None:
        self._bar = None
        if enabled and sys.stderr.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=f"epoch {epoch + 1}", leave=False, dynamic_ncols=True)

    def update(self, n: int, *, loss: float | None = None) -> None:
        if self._bar is None or n == 0:
            return
        self._bar.update(n)
        if loss is not None:
            self._bar.set_postfix(loss=f"{loss:.4f}", refresh=False)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


class MetricsLog:
    """Appends one JSON object per epoch to `OUT/metrics.jsonl` (flushed and fsynced per line).

    Also writes TensorBoard scalars to `OUT/tensorboard` when the `tensorboard` package is importable.
    """

    def __init__(self, out_dir: Path, *, enabled: bool) -> None:
        self.path = Path(out_dir) / "metrics.jsonl"
        self.enabled = enabled
        self._writer = None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                SummaryWriter = None  # noqa: N806
            if SummaryWriter is not None:
                self._writer = SummaryWriter(log_dir=str(Path(out_dir) / "tensorboard"))

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with open(self.path, "a") as handle:
            handle.write(json.dumps(record) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        if self._writer is not None:
            step = int(record.get("global_step", 0))
            for key in ("train_loss", "lr", "samples_per_s", "val_score"):
                if key in record:
                    self._writer.add_scalar(key, float(record[key]), step)
            for lead, values in record.get("val_rmse", {}).items():
                for channel, value in values.items():
                    self._writer.add_scalar(f"val_rmse/{channel}/{lead}h", value, step)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
