"""GPU training: bf16 autocast with fp32 FFTs, pinned non-blocking copies. Skips without CUDA."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from fno_forecast.bundle import load_bundle
from fno_forecast.cli import main
from tests.training.helpers import train_args, write_tiny_data

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (no GPU on this machine)"),
]


def test_tiny_training_on_gpu_in_bf16(tmp_path: Path) -> None:
    data = write_tiny_data(tmp_path / "tiny.nc")
    out = tmp_path / "run"
    assert main(train_args(data, out, "--device", "cuda", "--set", "bf16=true")) == 0
    bundle = load_bundle(out / "model", device="cuda")
    assert next(bundle.stepper.parameters()).device.type == "cuda"
    rmse = bundle.metadata["training"]["val_rmse"]
    assert all(v == v for lead in rmse.values() for v in lead.values())
