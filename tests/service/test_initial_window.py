"""The service reads as much history as the model's recent-anomaly correction uses, and forecasts alike."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from fno_forecast.bundle import load_bundle
from fno_forecast.data.timeaxis import format_time
from fno_forecast.forecast import forecast
from service.catalog import ModelEntry
from service.hub import initial_window
from tests.fixtures.bundle import copy_with_recent_anomaly, write_initial_states


def test_service_window_forecasts_what_the_library_does(tiny_bundle: Path, tmp_path: Path) -> None:
    bundle = load_bundle(copy_with_recent_anomaly(tiny_bundle, tmp_path / "model", coefficient=0.5))
    states = xr.open_dataset(write_initial_states(tmp_path / "states.nc", n_steps=20))
    run = format_time(states["time"].values[-1])
    entry = ModelEntry("m", bundle, states, tuple(states["time"].values), 48, "states.nc")
    window = initial_window(entry, run)
    assert window.sizes["time"] == 12  # the 3-day window: 12 steps up to and including the run
    served = forecast(bundle, window, 24, init_times=run)
    direct = forecast(bundle, states, 24, init_times=run)
    assert served.attrs["recent_anomaly_days"] == direct.attrs["recent_anomaly_days"] == "3"
    np.testing.assert_array_equal(served["air"].values, direct["air"].values)
