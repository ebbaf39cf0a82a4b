"""Every file in the shared real-data folder, read for real (skipped where the folder is absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fno_forecast.data.channels import open_channels
from fno_forecast.data.stats import compute_stats
from fno_forecast.data.timeaxis import select_period


def test_ncep_netcdf_and_zarr_give_identical_tensors(ncep_nc: Path, shared_data: Path) -> None:
    nc = open_channels(ncep_nc)
    zarr = open_channels(shared_data / "ncep_air_2013-2014.zarr")
    assert (nc.source_format, zarr.source_format) == ("netcdf4", "zarr2")
    assert nc.array.shape == zarr.array.shape == (2920, 1, 25, 53)
    np.testing.assert_array_equal(nc.array.values, zarr.array.values)
    assert nc.schema == zarr.schema
    assert nc.schema.channels[0].units == "degK"
    assert float(nc.array.mean()) == pytest.approx(281.2550, abs=1e-3)
    assert nc.time.step_hours == 6.0 and nc.time.gaps == ()
    grid = nc.schema.grid
    assert (grid.lat[0], grid.lat[-1], grid.lon[0], grid.lon[-1]) == (75.0, 15.0, 200.0, 330.0)
    assert not grid.is_global


def test_ncep_training_period_stats(ncep_nc: Path) -> None:
    train = select_period(open_channels(ncep_nc).array, "2013-01-01/2014-06-30")
    assert train.sizes["time"] == (365 + 181) * 4
    stats = compute_stats(train)
    values = train.values.astype(np.float64)
    assert stats.mean[0] == pytest.approx(values.mean(), rel=1e-6)
    assert stats.tendency_std[0] == pytest.approx(np.diff(values, axis=0).std(), rel=1e-4)


def test_era_interim_monthly_nine_channels_global(shared_data: Path) -> None:
    channels = open_channels(shared_data / "eraint_uvz_monthly.nc")
    assert channels.source_format == "netcdf3"
    assert channels.schema.channel_names == (
        "z200",
        "z500",
        "z850",
        "u200",
        "u500",
        "u850",
        "v200",
        "v500",
        "v850",
    )
    grid = channels.schema.grid
    assert (grid.nlat, grid.nlon, grid.resolution_deg, grid.is_global) == (241, 480, 0.75, True)
    assert channels.time.steps == 2 and channels.time.step_months == 6
    assert np.isfinite(channels.array.isel(time=0).values).all()


def test_era5_grib_ensemble(shared_data: Path) -> None:
    pytest.importorskip("cfgrib", reason="the grib extra is not installed")
    channels = open_channels(shared_data / "grib" / "era5-levels-members.grib")
    assert channels.source_format == "grib1"
    assert channels.schema.channel_names == ("z500", "z850", "t500", "t850")
    assert channels.schema.member == 0
    assert channels.time.step_hours == 12.0 and channels.time.steps == 4
    assert channels.schema.grid.is_global and channels.schema.grid.nlat == 61
    t850 = channels.array.sel(channel="t850").values
    assert 200.0 < float(t850.mean()) < 300.0


@pytest.mark.parametrize(
    ("name", "fmt", "channel", "shape"),
    [
        ("regular_ll_msl.grib", "grib2", "prmsl", (1, 1, 181, 360)),
        ("regular_ll_sfc.grib", "grib1", "skt", (1, 1, 37, 72)),
    ],
)
def test_other_gribs_open(
    shared_data: Path, name: str, fmt: str, channel: str, shape: tuple[int, ...]
) -> None:
    pytest.importorskip("cfgrib", reason="the grib extra is not installed")
    channels = open_channels(shared_data / "grib" / name)
    assert channels.source_format == fmt
    assert channels.schema.channel_names == (channel,)
    assert channels.array.shape == shape
    assert channels.schema.grid.is_global
