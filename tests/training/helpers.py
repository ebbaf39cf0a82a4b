"""A tiny training set-up shared by the training tests: 2 channels on an 8 x 16 grid, 6-hourly."""

from __future__ import annotations

from pathlib import Path

from tests.fixtures.data import write_synthetic

TINY_OVERRIDES = [
    "hidden_channels=4",
    "n_layers=1",
    "n_modes_lat=2",
    "n_modes_lon=4",
    "lifting_channel_ratio=1.0",
    "projection_channel_ratio=1.0",
    "climatology_annual=0",
    "climatology_diurnal=1",
    "batch_size=4",
    "warmup_steps=2",
    "stage1_epochs=2",
    "rollout_steps=[2]",
    "val_leads_hours=[6, 12]",
    "val_batch_size=16",
    "num_threads=1",
]


def write_tiny_data(path: Path, *, steps: int = 96) -> Path:
    """NetCDF4 with `t` at 850 and 500 hPa (channels t500, t850), 8 x 16 global grid, `steps` 6-hourly."""
    return write_synthetic(path, steps=steps, variables=("t",))


def train_args(data: Path, out: Path, *extra: str) -> list[str]:
    args = ["train", "--data", str(data), "--out", str(out), "--quiet"]
    for item in TINY_OVERRIDES:
        args += ["--set", item]
    return args + list(extra)
