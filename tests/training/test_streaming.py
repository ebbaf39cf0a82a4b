"""Streamed training: windows read from the (lazy) store batch by batch by DataLoader workers train the
same model as windows held in memory, and the trainer reports the fraction of time spent waiting for data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from fno_forecast.bundle import load_bundle
from fno_forecast.cli import main
from fno_forecast.data.channels import open_channels
from fno_forecast.data.windows import WindowDataset
from tests.fixtures.data import write_synthetic
from tests.training.helpers import train_args


@pytest.fixture(scope="module")
def tiny_zarr(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny training set (t500, t850 on 8 x 16, 96 steps) as Zarr v2 in chunks of 4 time steps."""
    dataset = write_synthetic(
        tmp_path_factory.mktemp("z") / "plain.zarr", fmt="zarr2", steps=96, variables=("t",)
    )
    import xarray as xr

    out = dataset.with_name("chunked.zarr")
    with xr.open_zarr(dataset) as ds:
        for name in ds.variables:
            ds[name].encoding.pop("chunks", None)
            ds[name].encoding.pop("preferred_chunks", None)
        ds.chunk({"time": 4}).to_zarr(out, zarr_format=2, consolidated=True)
    return out


def test_dask_chunks_follow_the_storage_chunks(tiny_zarr: Path) -> None:
    array = open_channels(tiny_zarr).array
    # 8 x 16 x 2 channels x 4 bytes = 1 kB a step: whole storage chunks of 4 steps up to 2 MiB
    assert array.data.chunks[0][0] % 4 == 0 and array.data.chunks[0][0] * 1024 <= 2 * 2**20 + 4096


def test_streamed_batches_equal_in_memory_batches(tiny_zarr: Path) -> None:
    array = open_channels(tiny_zarr).array
    memory = WindowDataset(array, target_steps=3, use_history=True)
    streamed = WindowDataset(array, target_steps=3, use_history=True, in_memory_limit_bytes=0)
    assert memory.in_memory and not streamed.in_memory
    plan = [[5, 1, 40, 41], [0, 88, 3, 3], [17]]
    for workers in (0, 2):
        for got, indices in zip(streamed.batches(plan, workers=workers, prefetch=1), plan, strict=True):
            want = memory.batch(indices)
            assert set(got) == set(want)
            for key in want:
                torch.testing.assert_close(got[key], want[key], rtol=0, atol=0)


def test_streamed_training_matches_in_memory_training_and_reports_data_wait(
    tiny_zarr: Path, tmp_path: Path
) -> None:
    runs = {}
    for name, extra in (
        ("memory", []),
        ("streamed", ["--set", "max_in_memory_gb=0", "--set", "loader_workers=1"]),
    ):
        out = tmp_path / name
        assert main(train_args(tiny_zarr, out, *extra)) == 0  # type: ignore[arg-type]
        runs[name] = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    memory, streamed = runs["memory"], runs["streamed"]
    assert [r.get("train_loss") for r in streamed] == pytest.approx([r.get("train_loss") for r in memory])
    for record in streamed[1:]:
        assert 0.0 <= record["data_wait_fraction"] < 1.0
    weights = [load_bundle(tmp_path / n / "model").stepper.state_dict() for n in ("memory", "streamed")]
    tensors = [k for k, v in weights[0].items() if isinstance(v, torch.Tensor)]
    assert len(tensors) > 4
    for key in tensors:
        value = weights[0][key]
        np.testing.assert_allclose(weights[1][key].numpy(), value.numpy(), rtol=1e-5, atol=1e-6)
