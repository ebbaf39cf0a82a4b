"""The service reads as much history as the model's recent-anomaly correction uses, and forecasts alike."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from fno_forecast.bundle import load_bundle
from fno_forecast.data.timeaxis import format_time
from fno_forecast.forecast import forecast
from service.catalog import ModelEntry
from service.engine import compute_rollout, library_forecast, read_rollout, rollout_data
from service.hub import initial_window
from service.store import RunKey
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


def test_the_service_rollout_is_the_librarys_forecast(tiny_bundle: Path, tmp_path: Path) -> None:
    """Same fields, same CF dataset (recent-anomaly provenance included), canonical values kept."""
    bundle = load_bundle(copy_with_recent_anomaly(tiny_bundle, tmp_path / "model", coefficient=0.5))
    states = xr.open_dataset(write_initial_states(tmp_path / "states.nc", n_steps=20))
    run = format_time(states["time"].values[-1])
    entry = ModelEntry("m", bundle, states, tuple(states["time"].values), 48, "states.nc")
    streamed: list[tuple[float, np.ndarray]] = []
    computed = compute_rollout(
        library_forecast,
        bundle=bundle,
        initial_state=initial_window(entry, run),
        run=run,
        hours=24,
        on_lead=lambda lead, fields: streamed.append((lead, fields)),
    )
    direct = forecast(bundle, states, 24, init_times=run)
    assert computed.dataset.attrs["recent_anomaly_days"] == direct.attrs["recent_anomaly_days"] == "3"
    xr.testing.assert_identical(computed.dataset.drop_attrs(), direct.drop_attrs())
    assert [lead for lead, _ in streamed] == [6.0, 12.0, 18.0, 24.0]
    np.testing.assert_array_equal(computed.values[:, 0], direct["air"].values)
    np.testing.assert_array_equal(np.stack([f for _, f in streamed]), computed.values)
    key = RunKey("m", bundle.sha256, run, 24)
    fresh = rollout_data(
        computed.dataset,
        key=key,
        schema=bundle.schema,
        lead_hours=computed.lead_hours,
        values=computed.values,
        computed_at=0.0,
        seconds=computed.seconds,
    )
    stored = read_rollout(computed.dataset, key=key, schema=bundle.schema, computed_at=0.0, seconds=0.0)
    np.testing.assert_array_equal(fresh.values, stored.values)
    np.testing.assert_array_equal(fresh.lead_hours, stored.lead_hours)
    assert fresh.init_time == stored.init_time == np.datetime64(run, "s") and fresh.units == stored.units
    assert format_time(fresh.valid_times[-1]) == format_time(np.datetime64(run) + np.timedelta64(24, "h"))
