from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from fno_forecast.cli import main
from fno_forecast.data.channels import open_channels
from tests.test_forecast import user_dataset


@pytest.fixture()
def init_file(tmp_path):
    path = tmp_path / "init.nc"
    user_dataset().to_netcdf(path)
    return path


def test_forecast_cli_writes_cf_netcdf(tiny_bundle, init_file, tmp_path, capsys):
    out = tmp_path / "fc.nc"
    args = [
        "forecast",
        "--model",
        str(tiny_bundle),
        "--data",
        str(init_file),
        "--lead-hours",
        "24",
        "--out",
        str(out),
    ]
    assert main(args) == 0
    assert "wrote" in capsys.readouterr().out
    ds = xr.open_dataset(out)
    assert ds["air"].dims == ("lead_time", "lat", "lon") and ds.sizes["lead_time"] == 4
    assert ds["air"].attrs["units"] == "K" and ds.attrs["data_source"] == str(init_file)
    assert ds["valid_time"].values[-1] == np.datetime64("2014-03-03T06:00")  # init 03-02T06 + 24 h
    assert np.isfinite(ds["air"].values).all()
    # the data layer reads the forecast back as channels, with valid_time as the time axis
    back = open_channels([out])
    assert back.schema.channel_names == ("air", "z500")
    np.testing.assert_array_equal(back.array.sel(channel="air").values, ds["air"].values)


def test_open_channels_and_inspect_read_a_forecast_file(tiny_bundle, init_file, tmp_path, capsys):
    out = tmp_path / "fc.nc"
    main(
        [
            "forecast",
            "--model",
            str(tiny_bundle),
            "--data",
            str(init_file),
            "--lead-hours",
            "12",
            "--out",
            str(out),
        ]
    )
    assert open_channels([out]).array.sizes["time"] == 2
    capsys.readouterr()
    assert main(["inspect", str(out), "--json"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["time"]["steps"] == 2 and schema["time"]["step_hours"] == 6
    assert [c["name"] for c in schema["channels"]] == ["air", "z500"]


def test_forecast_cli_zarr_and_several_inits(tiny_bundle, init_file, tmp_path):
    out = tmp_path / "fc.zarr"
    args = [
        "forecast",
        "--model",
        str(tiny_bundle),
        "--data",
        str(init_file),
        "--init-time",
        "2014-03-01T12/2014-03-01T18",
        "--lead-hours",
        "6",
        "--out",
        str(out),
        "--quiet",
    ]
    assert main(args) == 0
    ds = xr.open_zarr(out)
    assert ds["z"].dims == ("init_time", "lead_time", "level", "lat", "lon")
    assert ds.sizes["init_time"] == 2


def test_forecast_cli_errors_are_one_line(tiny_bundle, init_file, tmp_path, capsys):
    base = ["forecast", "--model", str(tiny_bundle), "--data", str(init_file), "--out"]
    assert main([*base, str(tmp_path / "fc.grib"), "--lead-hours", "6"]) == 2
    assert main([*base, str(tmp_path / "fc.nc"), "--lead-hours", "5"]) == 2
    assert main([*base, str(tmp_path / "fc.nc"), "--lead-hours", "6", "--init-time", "2020-01-01"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and ".grib" in err[0] and "lead_hours: 5 h" in err[1] and "2020-01-01" in err[2]
    assert not (tmp_path / "fc.nc").exists()
