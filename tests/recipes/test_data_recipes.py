"""The download recipes in data/, run against local files laid out like the remote ones."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

REPO = Path(__file__).resolve().parents[2]


def run_recipe(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "data" / script), *args], capture_output=True, text=True, timeout=120
    )


def write_psl_year(folder: Path, year: int) -> None:
    """A yearly file like PSL's air.sig995.YYYY.nc: global 2.5-degree grid, lat 90..-90, lon 0..357.5."""
    time = pd.date_range(f"{year}-01-01", periods=8, freq="6h")
    lat = np.arange(90.0, -90.1, -2.5, dtype=np.float32)
    lon = np.arange(0.0, 360.0, 2.5, dtype=np.float32)
    values = 250.0 + np.random.default_rng(year).normal(size=(time.size, lat.size, lon.size))
    air = xr.DataArray(
        values.astype(np.float32),
        dims=("time", "lat", "lon"),
        coords={"time": time, "lat": lat, "lon": lon},
        attrs={"units": "degK", "long_name": "mean Daily Air temperature at sigma level 995"},
    )
    xr.Dataset({"air": air}).to_netcdf(folder / f"air.sig995.{year}.nc")


def test_fetch_ncep_cuts_the_tutorial_region(tmp_path: Path) -> None:
    source = tmp_path / "psl"
    source.mkdir()
    for year in (2013, 2014):
        write_psl_year(source, year)
    out = tmp_path / "out" / "ncep.nc"
    result = run_recipe(
        "fetch_ncep.py",
        "--years",
        "2013-2014",
        "--source",
        str(source),
        "--cache",
        str(tmp_path / "c"),
        "--out",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    with xr.open_dataset(out) as ds:
        assert ds["air"].shape == (16, 25, 53)
        assert float(ds["lat"][0]) == 75.0 and float(ds["lat"][-1]) == 15.0
        assert float(ds["lon"][0]) == 200.0 and float(ds["lon"][-1]) == 330.0
        assert ds["air"].attrs["units"] == "degK"
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == ["air.sig995.2013.nc", "air.sig995.2014.nc"]


def test_fetch_ncep_missing_year_is_one_line_error(tmp_path: Path) -> None:
    result = run_recipe(
        "fetch_ncep.py",
        "--years",
        "1999",
        "--source",
        str(tmp_path),
        "--cache",
        str(tmp_path / "c"),
        "--out",
        str(tmp_path / "x.nc"),
    )
    assert result.returncode == 2
    assert "air.sig995.1999.nc" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "x.nc").exists()


def write_wb2_store(path: Path) -> None:
    """A store laid out like WeatherBench2's ERA5 Zarr (time, level, latitude, longitude)."""
    time = pd.date_range("2016-01-01", periods=12, freq="6h")
    level = np.array([50, 500, 850, 1000], dtype=np.int64)
    lat = np.linspace(-87.1875, 87.1875, 32)
    lon = np.arange(0.0, 360.0, 5.625)
    rng = np.random.default_rng(0)
    ds = xr.Dataset(
        {
            "geopotential": (("time", "level", "longitude", "latitude"), rng.normal(size=(12, 4, 64, 32))),
            "temperature": (("time", "level", "longitude", "latitude"), rng.normal(size=(12, 4, 64, 32))),
            "2m_temperature": (("time", "longitude", "latitude"), rng.normal(size=(12, 64, 32))),
        },
        coords={"time": time, "level": level, "latitude": lat, "longitude": lon},
    )
    ds.to_zarr(path, consolidated=True, zarr_format=2)


def test_subset_era5_selects_variables_levels_and_period(tmp_path: Path) -> None:
    store = tmp_path / "wb2.zarr"
    write_wb2_store(store)
    out = tmp_path / "sub.zarr"
    result = run_recipe(
        "subset_era5.py",
        "--source",
        str(store),
        "--variables",
        "geopotential",
        "2m_temperature",
        "--levels",
        "500",
        "850",
        "--period",
        "2016-01-01/2016-01-02",
        "--out",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    with xr.open_zarr(out) as ds:
        assert set(ds.data_vars) == {"geopotential", "2m_temperature"}
        assert ds["level"].values.tolist() == [500, 850]
        assert ds.sizes["time"] == 8
    assert not (tmp_path / "sub.zarr.tmp").exists()


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--variables", "humidity"], "humidity"),
        (["--variables", "temperature", "--levels", "700"], "700"),
        (["--variables", "temperature", "--period", "1990-01-01/1990-12-31"], "--period"),
    ],
)
def test_subset_era5_bad_request_names_it(tmp_path: Path, args: list[str], named: str) -> None:
    store = tmp_path / "wb2.zarr"
    write_wb2_store(store)
    result = run_recipe("subset_era5.py", "--source", str(store), *args, "--out", str(tmp_path / "o.zarr"))
    assert result.returncode == 2
    assert named in result.stderr and "Traceback" not in result.stderr
