"""The service reads as much history as the model's recent-anomaly correction uses, and forecasts alike."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import xarray as xr

from fno_forecast.bundle import load_bundle
from fno_forecast.data.timeaxis import format_time
from fno_forecast.forecast import forecast
from service.catalog import ModelEntry
from service.hub import initial_window
from tests.fixtures.bundle import write_initial_states


def test_service_window_forecasts_what_the_library_does(tiny_bundle: Path, tmp_path: Path) -> None:
    path = tmp_path / "model"
    shutil.copytree(tiny_bundle, path)
    metadata = json.loads((path / "model.json").read_text())
    metadata["recent_anomaly"] = {
        "window_days": [1.0, 3.0],
        "coefficients": [[0.5, 0.5], [0.5, 0.5]],
        "heldout_rmse": [1.0, 0.9],
        "climatology_rmse": 1.2,
        "fitted_on": "x",
        "held_out": "y",
    }
    (path / "model.json").write_text(json.dumps(metadata))
    bundle = load_bundle(path)
    states = xr.open_dataset(write_initial_states(tmp_path / "states.nc", n_steps=20))
    run = format_time(states["time"].values[-1])
    entry = ModelEntry("m", bundle, states, tuple(states["time"].values), 48, "states.nc")
    window = initial_window(entry, run)
    assert window.sizes["time"] == 12  # the 3-day window: 12 steps up to and including the run
    served = forecast(bundle, window, 24, init_times=run)
    direct = forecast(bundle, states, 24, init_times=run)
    assert served.attrs["recent_anomaly_days"] == direct.attrs["recent_anomaly_days"] == "3"
    np.testing.assert_array_equal(served["air"].values, direct["air"].values)
