"""data/make_big_store.py: a synthetic store written block by block that opens as 14 global channels."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
import xarray as xr

from fno_forecast.data.channels import open_channels

REPO = Path(__file__).resolve().parents[2]


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_big_store", REPO / "data" / "make_big_store.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_big_store_is_written_in_blocks_and_opens_as_global_channels(tmp_path: Path) -> None:
    script = load_script()
    assert script.steps_for(1.0, nlat=121, nlon=240) == 614  # floor(1e9 / (14 * 121 * 240 * 4))
    out = tmp_path / "big.zarr"
    assert (
        script.main(["--out", str(out), "--steps", "21", "--nlat", "9", "--nlon", "16", "--chunk-steps", "4"])
        == 0
    )
    assert not out.with_name("big.zarr.tmp").exists()
    with xr.open_zarr(out) as ds:
        assert ds["z"].encoding["chunks"] == (4, 3, 9, 16)
        assert ds.sizes["time"] == 21
    channels = open_channels(out)
    assert len(channels.schema.channels) == 14 and channels.schema.grid.is_global
    assert channels.time.steps == 21 and channels.time.step_hours == 6.0 and not channels.time.gaps
    values = channels.array.values
    assert np.isfinite(values).all()
    # the last, partial block is written too, and blocks differ (noise seeded per block)
    assert np.abs(values[20] - values[19]).max() > 0
    z500 = channels.array.sel(channel="z500").values
    assert 2.0e4 < float(z500.mean()) < 1.0e5
    # deterministic by seed: block 16..19 (of 4 steps) again
    lat, lon = channels.array["lat"].values, channels.array["lon"].values  # stored north first, as here
    again = script.block(16, 20, lat=lat, lon=lon, step_hours=6.0, seed=0)
    np.testing.assert_array_equal(again["t2m"], channels.array.sel(channel="t2m").values[16:20])
