"""`fno-forecast inspect`: JSON and table output, and one-line errors."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

from fno_forecast.cli import inspect_cmd
from fno_forecast.errors import DataError
from tests.fixtures.data import synthetic_dataset


def _inspect(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    parser = argparse.ArgumentParser()
    inspect_cmd.add_arguments(parser)
    assert inspect_cmd.run(parser.parse_args(list(argv))) == 0
    return capsys.readouterr().out


def test_json_for_synthetic_data_with_a_gap_and_nan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ds = synthetic_dataset(steps=12).isel(time=[0, 1, 2, 5, 6, 7, 8, 9, 10, 11])
    ds["z"][0, 1, 0, 0] = np.nan
    path = tmp_path / "gap.nc"
    ds.to_netcdf(path)
    doc = json.loads(_inspect(capsys, str(path), "--json", "--levels", "500"))
    assert doc["format"] == "netcdf4"
    assert doc["time"]["start"] == "2013-01-01T00:00" and doc["time"]["end"] == "2013-01-03T18:00"
    assert doc["time"]["steps"] == 10 and doc["time"]["step_hours"] == 6.0
    assert doc["time"]["gaps"] == [
        {"after": "2013-01-01T12:00", "before": "2013-01-02T06:00", "missing_steps": 2}
    ]
    assert doc["grid"] == {
        "nlat": 8,
        "nlon": 16,
        "lat_min": -78.75,
        "lat_max": 78.75,
        "lon_min": 0.0,
        "lon_max": 337.5,
        "resolution_deg": 22.5,
        "global": True,
    }
    assert [c["name"] for c in doc["channels"]] == ["z500", "t500"]
    assert doc["channels"][1] == {
        "name": "t500",
        "variable": "t",
        "level": 500.0,
        "units": "K",
        "long_name": "Temperature",
    }
    assert doc["missing_values"] == {"total": 1, "by_channel": {"z500": 1, "t500": 0}}


def test_plain_output_is_a_short_table(synthetic_nc: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = _inspect(capsys, str(synthetic_nc))
    assert "40 steps every 6 h, 0 gap(s)" in out
    assert "8 x 16, 22.5 deg" in out and "global" in out
    assert any(line.split()[:3] == ["z850", "z", "850"] for line in out.splitlines())
    assert len(out.splitlines()) < 15


def test_errors_raise_data_error_for_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(DataError, match="nope.nc: no such file"):
        _inspect(capsys, str(tmp_path / "nope.nc"))


@pytest.mark.parametrize(
    ("name", "fmt", "step", "grid", "channels"),
    [
        ("ncep_air_2013-2014.nc", "netcdf4", 6.0, (25, 53, 2.5, False), ["air"]),
        ("ncep_air_2013-2014.zarr", "zarr2", 6.0, (25, 53, 2.5, False), ["air"]),
        (
            "eraint_uvz_monthly.nc",
            "netcdf3",
            4382.91,
            (241, 480, 0.75, True),
            ["z200", "z500", "z850", "u200", "u500", "u850", "v200", "v500", "v850"],
        ),
        (
            "grib/era5-levels-members.grib",
            "grib1",
            12.0,
            (61, 120, 3.0, True),
            ["z500", "z850", "t500", "t850"],
        ),
        ("grib/regular_ll_msl.grib", "grib2", 0.0, (181, 360, 1.0, True), ["prmsl"]),
        ("grib/regular_ll_sfc.grib", "grib1", 0.0, (37, 72, 5.0, True), ["skt"]),
    ],
)
def test_json_for_every_shared_file(
    shared_data: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    fmt: str,
    step: float,
    grid: tuple[int, int, float, bool],
    channels: list[str],
) -> None:
    if fmt.startswith("grib"):
        pytest.importorskip("cfgrib", reason="the grib extra is not installed")
    doc = json.loads(_inspect(capsys, str(shared_data / name), "--json"))
    assert doc["format"] == fmt
    assert doc["time"]["step_hours"] == pytest.approx(step, abs=0.01) and doc["time"]["gaps"] == []
    g = doc["grid"]
    assert (g["nlat"], g["nlon"], g["resolution_deg"], g["global"]) == grid
    assert [c["name"] for c in doc["channels"]] == channels
    assert doc["missing_values"]["total"] == 0


def test_cli_main_prints_one_line_and_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from fno_forecast.cli import main

    bad = tmp_path / "bad.nc"
    bad.write_text("not data")
    code = main(["inspect", str(bad)])
    err = capsys.readouterr().err
    assert code == 2
    assert (
        err
        == f"fno-forecast inspect: error: {bad}: not a supported format (NetCDF3, NetCDF4/HDF5, Zarr v2/v3, GRIB 1/2)\n"
    )
