from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

from fno_forecast.bundle import load_bundle
from fno_forecast.errors import BundleError, ForecastError
from fno_forecast.forecast import forecast, forecast_steps
from tests.fixtures.bundle import copy_with_recent_anomaly, tiny_state_array


def user_dataset(n_steps: int = 6, *, start: str = "2014-03-01") -> xr.Dataset:
    """The tiny grid as a user has it: `air` (time, lat, lon) in K, `z` (time, level, lat, lon), lat ascending."""
    array = tiny_state_array(n_steps=n_steps, start=start, seed=3)
    z = array.sel(channel="z500").drop_vars("channel")
    z850 = z - 4000.0
    dataset = xr.Dataset(
        {
            "air": array.sel(channel="air")
            .drop_vars("channel")
            .assign_attrs(units="K", long_name="air temperature"),
            "z": xr.concat([z, z850], dim=xr.DataArray([500.0, 850.0], dims="level", name="level"))
            .transpose("time", "level", "lat", "lon")
            .assign_attrs(units="m"),
        }
    )
    dataset["level"].attrs["units"] = "hPa"
    dataset.attrs["source"] = "synthetic user data"
    return dataset.sortby("lat")


@pytest.fixture(scope="module")
def bundle(tiny_bundle):
    return load_bundle(tiny_bundle)


def test_forecast_latest_complete_init(bundle):
    data = user_dataset()
    calls = []
    out = forecast(bundle, data, 24, on_step=lambda *a: calls.append(a))
    assert calls == [(1, 4, 6.0), (2, 4, 12.0), (3, 4, 18.0), (4, 4, 24.0)]
    assert out["air"].dims == ("lead_time", "lat", "lon")
    assert out["z"].dims == ("lead_time", "level", "lat", "lon")
    assert out["z"].sizes["level"] == 1 and float(out["level"][0]) == 500.0
    assert out["lat"].values[0] > out["lat"].values[-1]  # canonical north to south
    assert out["init_time"].values == data["time"].values[-1]
    np.testing.assert_array_equal(out["lead_time"].values, np.arange(1, 5) * np.timedelta64(6, "h"))
    np.testing.assert_array_equal(out["valid_time"].values, data["time"].values[-1] + out["lead_time"].values)
    assert out["air"].attrs["units"] == "K" and out["z"].attrs["units"] == "m"
    assert out["air"].dtype == np.float32 and np.isfinite(out["air"].values).all()
    assert out.attrs["model_sha256"] == bundle.sha256 and out.attrs["data_source"] == "synthetic user data"
    assert out.attrs["Conventions"].startswith("CF") and out.attrs["package_version"]
    assert out["init_time"].attrs["standard_name"] == "forecast_reference_time"


def test_forecast_equals_stepper_applied_by_hand(bundle):
    data = user_dataset(n_steps=3)
    out = forecast(bundle, data, 12)
    canon = tiny_state_array(n_steps=3, start="2014-03-01", seed=3).values
    hours = torch.tensor([data["time"].values[-1].astype("datetime64[s]").astype(np.int64) / 3600.0])
    with torch.no_grad():
        prev, cur = torch.from_numpy(canon[1:2]), torch.from_numpy(canon[2:3])
        for _ in range(2):
            prev, cur = cur, bundle.stepper(cur, time_hours=hours.double(), previous=prev)
            hours = hours + 6.0
    np.testing.assert_allclose(out["air"].values[-1], cur[0, 0].numpy(), rtol=1e-5)
    np.testing.assert_allclose(out["z"].values[-1, 0], cur[0, 1].numpy(), rtol=1e-5)


def test_several_inits_batch_into_one_forecast(bundle):
    data = user_dataset()
    out = forecast(bundle, data, 12, init_times="2014-03-01T06/2014-03-02")
    assert out["air"].dims == ("init_time", "lead_time", "lat", "lon")
    assert out.sizes["init_time"] == 5
    assert out["valid_time"].dims == ("init_time", "lead_time")
    single = forecast(bundle, data, 12, init_times="2014-03-01T18")
    np.testing.assert_allclose(
        out["air"].sel(init_time="2014-03-01T18").values, single["air"].values, rtol=1e-5
    )


def test_forecast_steps_yields_each_lead(bundle):
    leads = [
        (lead, ds["air"].dims, ds["lead_time"].values)
        for lead, ds in forecast_steps(bundle, user_dataset(), 18)
    ]
    assert [lead for lead, _, _ in leads] == [6.0, 12.0, 18.0]
    assert leads[0][1] == ("lat", "lon")


def test_bad_requests_say_what_is_wrong(bundle):
    data = user_dataset()
    with pytest.raises(ForecastError, match="lead_hours: 7 h"):
        forecast(bundle, data, 7)
    with pytest.raises(ForecastError, match="not in the initial state"):
        forecast(bundle, data, 6, init_times="2015-01-01T00")
    with pytest.raises(ForecastError, match="step 6 h before"):
        forecast(bundle, data, 6, init_times="2014-03-01T00")
    with pytest.raises(ForecastError, match=r"needs variable\(s\) \['z'\]"):
        forecast(bundle, data.drop_vars("z"), 6)
    with pytest.raises(BundleError, match="grid"):
        forecast(bundle, data.isel(lon=slice(0, 10)), 6)
    nan = data.copy(deep=True)
    nan["air"][-1, 0, 0] = np.nan
    with pytest.raises(ForecastError, match="NaN"):
        forecast(bundle, nan, 6)


def test_blow_up_names_the_step(bundle):
    calls = {"n": 0}

    def explode_on_third_call(module, inputs, output):
        calls["n"] += 1
        return output * float("inf") if calls["n"] == 3 else output

    handle = bundle.stepper.network.register_forward_hook(explode_on_third_call)
    try:
        with pytest.raises(ForecastError, match=r"step 3 \(lead 18 h\)"):
            forecast(bundle, user_dataset(), 30)
    finally:
        handle.remove()


def test_recent_anomaly_correction_shifts_long_leads_by_the_history_it_has(tiny_bundle, tmp_path):
    path = copy_with_recent_anomaly(tiny_bundle, tmp_path / "model", coefficient=1.0)
    corrected, plain = load_bundle(path), load_bundle(tiny_bundle)
    warm = user_dataset(n_steps=20)  # 5 days of history: the 3-day window fits
    warm["air"] = warm["air"] + 3.0  # a persistent +3 K anomaly
    out_corrected = forecast(corrected, warm, 48)
    out_plain = forecast(plain, warm, 48)
    assert out_corrected.attrs["recent_anomaly_days"] == "3"
    assert "recent_anomaly_days" not in out_plain.attrs
    # This untrained bundle has no relaxation: the offset reaches it only through its climatology input
    # (how a relaxing stepper tends to the offset climatology is tested in tests/models).
    change = np.abs((out_corrected["air"] - out_plain["air"]).isel(lead_time=-1).values)
    assert change.max() > 1e-3
    short = user_dataset(n_steps=3)  # half a day: no window fits, no correction
    out_short = forecast(corrected, short, 12)
    assert out_short.attrs["recent_anomaly_days"] == "0"
    np.testing.assert_allclose(out_short["air"].values, forecast(plain, short, 12)["air"].values)
