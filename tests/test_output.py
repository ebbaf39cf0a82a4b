from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from fno_forecast.errors import ConfigError
from fno_forecast.output import output_format, write_forecast, write_text_atomic


def _dataset() -> xr.Dataset:
    lead = pd.to_timedelta([6, 12], unit="h")
    init = np.datetime64("2014-02-28T18:00")
    data = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    return xr.Dataset(
        {"air": (("lead_time", "lat", "lon"), data, {"units": "K"})},
        coords={
            "lead_time": lead,
            "lat": [60.0, 50.0, 40.0],
            "lon": [200.0, 210.0, 220.0, 230.0],
            "init_time": init,
            "valid_time": ("lead_time", init + lead.values),
        },
    )


@pytest.mark.parametrize("name", ["f.nc", "f.zarr"])
def test_write_forecast_round_trip_and_replace(tmp_path, name):
    ds = _dataset()
    path = write_forecast(ds, tmp_path / name)
    write_forecast(ds + 1, path)  # replaces an existing output
    back = xr.open_dataset(path, engine="zarr" if name.endswith("zarr") else None).load()
    np.testing.assert_array_equal(back["air"].values, ds["air"].values + 1)
    assert back["air"].attrs["units"] == "K"
    assert back["valid_time"].values[1] == np.datetime64("2014-03-01T06:00")
    assert back["lead_time"].values[0] == np.timedelta64(6, "h")
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no temporary left behind


def test_write_text_atomic(tmp_path):
    path = write_text_atomic(tmp_path / "sub" / "a.json", "{}\n")
    assert path.read_text() == "{}\n"
    assert [p.name for p in path.parent.iterdir()] == ["a.json"]


def test_unknown_suffix_names_the_path():
    with pytest.raises(ConfigError, match="out.grib"):
        output_format("out.grib")
