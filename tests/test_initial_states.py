from __future__ import annotations

import socket

import numpy as np

from fno_forecast.initial_states import default_initial_states


def test_default_initial_states_are_the_ncep_sample_offline(monkeypatch):
    def no_network(*args, **kwargs):
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    ds = default_initial_states()
    assert ds.sizes == {"time": 20, "lat": 25, "lon": 53}
    assert ds["time"].values[0] == np.datetime64("2014-02-24T00")
    assert ds["time"].values[-1] == np.datetime64("2014-02-28T18")
    assert ds["air"].dtype == np.float32 and ds["air"].attrs["units"] == "degK"
    assert float(ds["air"].min()) > 220.0 and float(ds["air"].max()) < 310.0
    assert "NCEP" in ds.attrs["source"]


def test_default_initial_states_match_the_shared_ncep_file(ncep_nc):
    import xarray as xr

    sample = default_initial_states()["air"]
    with xr.open_dataset(ncep_nc) as full:
        same = full["air"].sel(time=sample["time"].values).values
    np.testing.assert_allclose(sample.values, same, atol=1e-3)
