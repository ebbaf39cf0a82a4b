"""Every bad input gives one DataError line naming the file and the problem."""

from __future__ import annotations

import builtins
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from fno_forecast.data.channels import open_channels
from fno_forecast.data.checks import check_finite
from fno_forecast.errors import DataError
from tests.fixtures.data import synthetic_dataset, write_synthetic


def _error(**kwargs: object) -> str:
    with pytest.raises(DataError) as info:
        open_channels(**kwargs)  # type: ignore[arg-type]
    text = str(info.value)
    assert "\n" not in text
    return text


def test_path_does_not_exist(tmp_path: Path) -> None:
    missing = tmp_path / "nope.nc"
    assert _error(paths=missing) == f"{missing}: no such file or directory"
    assert "matches nothing" in _error(paths=str(tmp_path / "x*.nc"))


def test_file_in_no_supported_format(tmp_path: Path) -> None:
    path = tmp_path / "notes.nc"
    path.write_text("just some text\n")
    assert _error(paths=path).startswith(f"{path}: not a supported format")
    empty = tmp_path / "empty.nc"
    empty.write_bytes(b"")
    assert "empty file" in _error(paths=empty)


@pytest.mark.parametrize("fmt", ["netcdf4", "netcdf3"])
def test_truncated_netcdf(tmp_path: Path, fmt: str) -> None:
    full = write_synthetic(tmp_path / "full.nc", fmt=fmt)
    cut = tmp_path / "cut.nc"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 3])
    text = _error(paths=cut)
    assert text.startswith(f"{cut}: corrupt or truncated")


def test_no_time_coordinate(tmp_path: Path) -> None:
    path = tmp_path / "notime.nc"
    synthetic_dataset(steps=1).isel(time=0, drop=True).to_netcdf(path)
    assert _error(paths=path).startswith(f"{path}: no time coordinate")


def test_no_lat_lon(tmp_path: Path) -> None:
    path = tmp_path / "nogrid.nc"
    ds = synthetic_dataset(steps=2).rename({"latitude": "row", "longitude": "col"})
    ds["row"].attrs = {}
    ds["col"].attrs = {}
    ds.to_netcdf(path)
    text = _error(paths=path)
    assert text.startswith(f"{path}: no latitude or longitude coordinate")


def test_variable_absent_lists_those_present(synthetic_nc: Path) -> None:
    text = _error(paths=synthetic_nc, variables=["q"])
    assert text == f"{synthetic_nc}: variable(s) q absent; variables present: z, t"


def test_level_absent_lists_the_levels(synthetic_nc: Path) -> None:
    text = _error(paths=synthetic_nc, levels=[700])
    assert text == f"{synthetic_nc}: level(s) 700 absent; levels present: 850, 500"


def test_files_whose_grids_differ(tmp_path: Path) -> None:
    a = write_synthetic(tmp_path / "a.nc", steps=4)
    b = write_synthetic(tmp_path / "b.nc", steps=4, start="2013-01-02", nlat=6)
    text = _error(paths=[a, b])
    assert text.startswith(f"{b}: grids differ from {a}")


def test_irregular_time_step_refused_unless_subsampled(tmp_path: Path) -> None:
    hourly = synthetic_dataset(steps=24, step_hours=1)
    extra = hourly.isel(time=[4, 10]).assign_coords(
        time=hourly["time"].values[[4, 10]] + np.timedelta64(30, "m")
    )
    path = tmp_path / "irregular.nc"
    xr.concat([hourly, extra], dim="time").sortby("time").to_netcdf(path)
    text = _error(paths=path)
    assert text.startswith(f"{path}: irregular time step (detected 1 h, but not after 2013-01-01T04:00")
    channels = open_channels(path, step_hours=6)
    assert channels.time.step_hours == 6.0 and channels.time.steps == 4 and channels.time.regular


def test_nan_in_training_period_counts_and_locates(tmp_path: Path) -> None:
    ds = synthetic_dataset(steps=8)
    ds["t"][3, 0, 2, 5] = np.nan
    ds["t"][6, 1, 0, 0] = np.nan
    path = tmp_path / "nan.nc"
    ds.to_netcdf(path)
    array = open_channels(path).array
    with pytest.raises(DataError) as info:
        check_finite(array, "2013-01-01/2013-01-02")
    text = str(info.value)
    lat = float(ds["latitude"][2])
    assert text.startswith(f"{path}: period 2013-01-01/2013-01-02: 2 missing (NaN/Inf) value(s)")
    assert "by channel: t500 1, t850 1;" in text and "at some steps only" in text
    assert f"first at time 2013-01-01T18:00, channel t850, lat {lat:g}, lon 112.5" in text
    # A period without the NaN passes; a fill is opt-in and leaves no NaN.
    clean = check_finite(array, "2013-01-01/2013-01-01T12:00")
    assert clean.sizes["time"] == 3
    filled = check_finite(array, fill="nearest_time")
    assert np.isfinite(filled.values).all()
    lat_index = int(np.argmax(array["lat"].values == lat))
    channel = list(array["channel"].values).index("t850")
    assert filled.values[3, channel, lat_index, 5] == array.values[2, channel, lat_index, 5]
    by_mean = check_finite(array, fill="channel_mean")
    assert by_mean.values[3, channel, lat_index, 5] == pytest.approx(
        float(np.nanmean(array.values[:, channel])), rel=1e-5
    )


def test_grib_without_the_extra_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "fake.grib"
    path.write_bytes(b"GRIB\x00\x00\x00\x02" + b"\x00" * 64)
    real_import = builtins.__import__

    def no_cfgrib(name: str, *args: object, **kwargs: object) -> object:
        if name == "cfgrib":
            raise ImportError("No module named 'cfgrib'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_cfgrib)
    assert (
        _error(paths=path) == f'{path}: reading GRIB needs the grib extra: pip install "fno-forecast[grib]"'
    )


@pytest.mark.parametrize("kind", ["mask", "missing step"])
def test_train_on_missing_values_exits_with_one_line_naming_file_channel_and_kind(
    tmp_path: Path, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """An ocean-only field (NaN over land at every step) and a missing analysis (NaN at one step) are
    refused before any training, in one line that says which channel, where, and what to do."""
    from fno_forecast.cli import main

    ds = synthetic_dataset(steps=24)
    if kind == "mask":
        ds["t"][:, 1, :3, :4] = np.nan
    else:
        ds["t"][9, 0] = np.nan
    path = tmp_path / "holes.nc"
    ds.to_netcdf(path)
    code = main(["train", "--data", str(path), "--out", str(tmp_path / "run"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code != 0 and len(err.splitlines()) == 1
    assert str(path) in err and "missing (NaN/Inf) value(s) by channel" in err
    if kind == "mask":
        assert "by channel: t500 240;" in err  # 20 training steps of 12 points
        assert "the same points at every step (a mask)" in err
    else:
        assert "at some steps only" in err
    assert "--set variables=[...]" in err and not (tmp_path / "run" / "model").exists()
