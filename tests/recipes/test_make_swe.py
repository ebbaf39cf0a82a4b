"""data/make_swe.py: global shallow-water trajectories that open as a global grid with both poles."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr
from torch_harmonics.quadrature import clenshaw_curtiss_weights

from fno_forecast.data.channels import open_channels
from tests.fixtures.data import load_make_swe

REPO = Path(__file__).resolve().parents[2]
TINY = ["--nlat", "9", "--trajectories", "3", "--steps", "6", "--gap-steps", "2", "--spinup-hours", "6"]


def make_swe(out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            str(REPO / "data" / "make_swe.py"),
            "--out",
            str(out),
            "--threads",
            "1",
            *TINY,
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )


@pytest.fixture(scope="module")
def swe_zarr(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("swe") / "swe.zarr"
    result = make_swe(out)
    assert result.returncode == 0, result.stderr
    return out


def test_swe_opens_as_a_global_grid_with_both_poles_and_gaps(swe_zarr: Path) -> None:
    channels = open_channels(swe_zarr)
    grid = channels.schema.grid
    assert channels.schema.channel_names == ("h", "u", "v")
    assert [c.units for c in channels.schema.channels] == ["m", "m s-1", "m s-1"]
    assert (grid.nlat, grid.nlon) == (9, 16)
    assert grid.lat[0] == pytest.approx(90.0) and grid.lat[-1] == pytest.approx(-90.0)
    assert grid.is_global and grid.resolution_deg == pytest.approx(22.5)
    assert channels.time.steps == 18 and channels.time.step_hours == 6.0
    assert [g.missing_steps for g in channels.time.gaps] == [2, 2]
    assert channels.time.gaps[0].after.startswith("2000-01-02T06")

    result = subprocess.run(
        [sys.executable, "-m", "fno_forecast", "inspect", str(swe_zarr), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert (
        doc["grid"]["global"] is True and doc["grid"]["lat_max"] == 90.0 and doc["grid"]["lat_min"] == -90.0
    )
    assert len(doc["time"]["gaps"]) == 2 and doc["missing_values"]["total"] == 0


def test_swe_conserves_mean_height_and_moves(swe_zarr: Path) -> None:
    with xr.open_zarr(swe_zarr) as ds:
        h = ds["h"].values.astype(np.float64)
        u = ds["u"].values
        assert ds["h"].attrs["standard_name"] == "geopotential_height"
    # Clenshaw-Curtis weights are the solver's own quadrature on this grid: the mass it conserves.
    _, weights = clenshaw_curtiss_weights(h.shape[1], -1, 1)
    weights = weights.numpy() / weights.numpy().sum()
    means = np.einsum("tyx,y->t", h, weights) / h.shape[2]
    np.testing.assert_allclose(means, 1.0e4, rtol=2e-6)
    # The fields evolve (nonlinear regime by default: ~200 m and ~20 m/s RMS), and trajectories differ.
    assert 50.0 < float(h[:6].std()) < 1000.0 and 3.0 < float(np.abs(u).max()) < 200.0
    assert np.abs(h[5] - h[0]).max() > 1.0
    assert np.abs(h[6] - h[0]).max() > 1.0


def test_swe_is_deterministic_by_seed_and_amplitude_sets_the_regime(swe_zarr: Path) -> None:
    make_dataset = load_make_swe().make_dataset
    tiny = {"nlat": 9, "trajectories": 3, "steps": 6, "gap_steps": 2, "spinup_hours": 6.0}
    with xr.open_zarr(swe_zarr) as ref:
        ref_h = ref["h"].values
    with torch_threads(1):
        same = make_dataset(**tiny)["h"].values
        other = make_dataset(**tiny, seed=1)["h"].values
        small = make_dataset(**tiny, amplitude=0.1)["h"].values
    np.testing.assert_array_equal(same, ref_h)
    assert np.abs(other - ref_h).max() > 1.0
    # A = 0.1 against A = 2: perturbations twenty times smaller about the same mean.
    ratio = float((small - 1.0e4).std()) / float((ref_h - 1.0e4).std())
    assert 0.02 < ratio < 0.1


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def test_swe_bad_arguments_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main = load_make_swe().main
    assert main(["--out", str(tmp_path / "x.grib"), *TINY]) == 2
    assert "--out" in capsys.readouterr().err
    assert main(["--out", str(tmp_path / "x.nc"), *TINY, "--nlat", "8"]) == 2
    err = capsys.readouterr().err
    assert "--nlat must be odd" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.nc").exists()


def test_sfno_trains_on_swe_trajectories_without_crossing_gaps(tmp_path: Path) -> None:
    from fno_forecast.bundle import load_bundle
    from fno_forecast.cli import main as cli
    from fno_forecast.output import write_forecast
    from tests.training.helpers import train_args

    with torch_threads(1):
        dataset = load_make_swe().make_dataset(
            nlat=9, trajectories=4, steps=24, gap_steps=4, spinup_hours=6.0
        )
    data = write_forecast(dataset, tmp_path / "swe.nc")
    out = tmp_path / "run"
    assert cli(train_args(data, out, "--set", "model=sfno", "--set", "recent_anomaly=false")) == 0
    bundle = load_bundle(out / "model")
    assert bundle.metadata["model"]["name"] == "sfno"
    assert bundle.schema.channel_names == ("h", "u", "v") and bundle.schema.grid.is_global
    assert len(bundle.metadata["training"]["data"]["time"]["gaps"]) == 3
    val = bundle.metadata["training"]["val_rmse"]
    assert all(np.isfinite(v) for lead in val.values() for v in lead.values())
