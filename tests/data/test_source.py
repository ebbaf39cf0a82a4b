"""Opening sources: formats, coordinate detection, several files, ensembles, selections."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from fno_forecast.data.channels import open_channels
from fno_forecast.data.coords import find_coords
from fno_forecast.data.formats import detect_format
from fno_forecast.data.source import open_source
from tests.fixtures.data import synthetic_dataset, write_synthetic


@pytest.mark.parametrize("fmt", ["netcdf4", "netcdf3", "zarr2", "zarr3"])
def test_every_format_gives_the_same_canonical_array(tmp_path: Path, fmt: str) -> None:
    reference = synthetic_dataset()
    path = write_synthetic(tmp_path / f"data.{fmt}", fmt=fmt, dataset=reference)
    assert detect_format(path) == fmt
    channels = open_channels(path)
    array = channels.array
    assert array.dims == ("time", "channel", "lat", "lon")
    assert array.dtype == np.float32
    assert sorted(channels.schema.channel_names) == ["t500", "t850", "z500", "z850"]
    # Latitude comes out descending although the file stores it ascending.
    assert np.all(np.diff(array["lat"].values) < 0)
    assert np.all(np.diff(array["lon"].values) > 0)
    expected = reference["t"].sel(level=850.0).isel(latitude=slice(None, None, -1)).values
    np.testing.assert_array_equal(array.sel(channel="t850").values, expected)
    info = {c.name: c for c in channels.schema.channels}
    assert info["z500"].variable == "z" and info["z500"].level == 500.0
    assert info["t850"].units == "K" and info["t850"].long_name == "Temperature"
    assert channels.schema.grid.is_global
    assert channels.time.step_hours == 6.0 and channels.time.steps == 40


def test_levels_ascend_within_a_variable_and_variables_keep_file_order(synthetic_nc: Path) -> None:
    names = open_channels(synthetic_nc).schema.channel_names
    assert names == ("z500", "z850", "t500", "t850")


def test_source_is_lazy(synthetic_nc: Path) -> None:
    dataset = open_source(synthetic_nc)
    assert dataset["z"].chunks is not None
    assert open_channels(synthetic_nc).array.chunks is not None


def test_coordinates_found_by_cf_attributes_under_odd_names(tmp_path: Path) -> None:
    ds = synthetic_dataset(steps=4, variables=("t",)).rename(
        {"time": "Tm", "latitude": "NORTHING", "longitude": "EASTING", "level": "PLV"}
    )
    ds["NORTHING"].attrs = {"units": "degrees_north"}
    ds["EASTING"].attrs = {"axis": "X"}
    ds["PLV"].attrs = {"standard_name": "air_pressure", "units": "Pa"}
    ds = ds.assign_coords(PLV=ds["PLV"] * 100.0)
    ds["PLV"].attrs = {"standard_name": "air_pressure", "units": "Pa"}
    names = find_coords(ds)
    assert (names.time, names.lat, names.lon, names.level) == ("Tm", "NORTHING", "EASTING", "PLV")
    path = tmp_path / "odd.nc"
    ds.to_netcdf(path)
    channels = open_channels(path)
    assert channels.schema.channel_names == ("t500", "t850")
    assert any("Pa to hPa" in n for n in channels.schema.notes)


def test_coordinates_found_by_common_names_in_any_case(tmp_path: Path) -> None:
    ds = synthetic_dataset(steps=4, variables=("t",))
    for name in ("latitude", "longitude", "level", "time"):
        ds[name].attrs = {}
    ds = ds.rename({"latitude": "LAT", "longitude": "Lon", "level": "isobaricInhPa"})
    path = tmp_path / "names.nc"
    ds.to_netcdf(path)
    assert open_channels(path).schema.channel_names == ("t500", "t850")


def test_longitudes_in_minus_180_convention_are_sorted_ascending(tmp_path: Path) -> None:
    ds = synthetic_dataset(steps=3, variables=("t",), levels=(500.0,), nlon=8)
    lon = ds["longitude"].values
    ds = ds.assign_coords(longitude=np.where(lon >= 180, lon - 360, lon))
    path = tmp_path / "pm180.nc"
    ds.to_netcdf(path)
    grid = open_channels(path).schema.grid
    assert grid.lon == (-180.0, -135.0, -90.0, -45.0, 0.0, 45.0, 90.0, 135.0)
    assert grid.is_global


def test_packed_int16_is_decoded(tmp_path: Path) -> None:
    ds = synthetic_dataset(steps=3, variables=("t",), levels=(500.0,))
    path = tmp_path / "packed.nc"
    encoding = {"t": {"dtype": "int16", "scale_factor": 0.01, "add_offset": 250.0, "_FillValue": -32767}}
    ds.to_netcdf(path, encoding=encoding)
    values = open_channels(path).array.values
    expected = ds["t"].isel(level=0, latitude=slice(None, None, -1)).values
    np.testing.assert_allclose(values[:, 0], expected, atol=0.006)


def test_several_files_and_a_glob_concatenate_on_time(tmp_path: Path) -> None:
    full = synthetic_dataset(steps=12)
    for k in range(3):
        # Written out of order on purpose: the result follows time, not file names.
        full.isel(time=slice(4 * k, 4 * k + 4)).to_netcdf(tmp_path / f"part{2 - k}.nc")
    by_glob = open_channels(str(tmp_path / "part*.nc"))
    by_list = open_channels(sorted(tmp_path.glob("part*.nc")))
    assert by_glob.time.steps == 12 and len(by_glob.paths) == 3
    np.testing.assert_array_equal(by_glob.array["time"].values, full["time"].values)
    np.testing.assert_array_equal(by_glob.array.values, by_list.array.values)


def test_ensemble_member_first_by_default_and_chosen_by_number(tmp_path: Path) -> None:
    members = [synthetic_dataset(steps=3, variables=("t",), seed=s) for s in range(3)]
    ds = xr.concat(members, dim="number").assign_coords(number=[0, 1, 2])
    ds = ds.expand_dims(step=1).assign_coords(surface=0.0)
    path = tmp_path / "ens.nc"
    ds.to_netcdf(path)
    first = open_channels(path)
    assert first.schema.member == 0 and any("member 0 used" in n for n in first.schema.notes)
    second = open_channels(path, member=2)
    assert second.schema.member == 2
    expected = members[2]["t"].sel(level=500.0).isel(latitude=slice(None, None, -1)).values
    np.testing.assert_array_equal(second.array.sel(channel="t500").values, expected)


def test_month_dim_without_time_is_a_monthly_axis(tmp_path: Path) -> None:
    ds = synthetic_dataset(steps=2, variables=("z",)).isel(time=[0, 1]).drop_vars("time")
    ds = ds.rename({"time": "month"}).assign_coords(month=[1, 7])
    path = tmp_path / "monthly.nc"
    ds.to_netcdf(path)
    channels = open_channels(path)
    assert channels.time.step_months == 6
    assert channels.time.start.startswith("2000-01-01") and channels.time.end.startswith("2000-07-01")
    assert any("month" in n for n in channels.schema.notes)


def test_variables_and_levels_select_channels(synthetic_nc: Path) -> None:
    channels = open_channels(synthetic_nc, variables=["t"], levels=[850])
    assert channels.schema.channel_names == ("t850",)
    assert channels.array.shape == (40, 1, 8, 16)
