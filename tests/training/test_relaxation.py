"""The damped-anomaly prior recovers a known AR(1) decay and round-trips through the bundle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import xarray as xr

from fno_forecast.bundle import load_bundle, save_bundle
from fno_forecast.climatology import Climatology
from fno_forecast.data.schema import ChannelInfo, DataSchema, GridInfo
from fno_forecast.models.registry import FNOConfig, model_config_to_dict, resolve_defaults
from fno_forecast.models.stepper import Stepper, build_stepper
from fno_forecast.training.relaxation import fit_relaxation

LAT = np.linspace(40.0, 30.0, 3)
LON = np.linspace(0.0, 15.0, 4)


def _ar1_array(phi: np.ndarray, n: int = 4000, seed: int = 0) -> xr.DataArray:
    rng = np.random.default_rng(seed)
    values = np.zeros((n, 1, 3, 4))
    for t in range(1, n):
        values[t] = phi * values[t - 1] + rng.normal(size=(1, 3, 4))
    times = np.datetime64("2000-01-01", "ns") + np.arange(n) * np.timedelta64(6, "h")
    return xr.DataArray(
        (values + 250.0).astype(np.float32),
        dims=("time", "channel", "lat", "lon"),
        coords={"time": times, "channel": ["t"], "lat": LAT, "lon": LON},
    )


def _prior_stepper(
    climatology: Climatology, *, rate: float, mean: float, std: float, use_history: bool
) -> Stepper:
    """An untrained one-channel FNO stepper on the damped-anomaly prior with a uniform `rate`."""
    grid = GridInfo.from_arrays(LAT, LON)
    return build_stepper(
        model_name="fno",
        model_config=resolve_defaults(FNOConfig(hidden_channels=4, n_layers=1), grid),
        grid_lat=LAT,
        grid_lon=LON,
        step_hours=6.0,
        mean=np.array([mean]),
        std=np.array([std]),
        tendency_std=np.array([1.0]),
        use_history=use_history,
        climatology=climatology,
        relaxation=np.full((1, 3, 4), rate, dtype=np.float32),
    )


def test_fit_relaxation_recovers_the_ar1_decay() -> None:
    phi = np.linspace(0.5, 0.95, 12).reshape(1, 3, 4)
    climatology = Climatology(np.full((1, 1, 3, 4), 250.0, dtype=np.float32), annual=0, diurnal=0)
    rate = fit_relaxation(_ar1_array(phi), climatology, chunk_steps=333)
    assert rate.shape == (1, 3, 4) and rate.dtype == np.float32
    assert np.allclose(rate, 1.0 - phi, atol=0.04)


def test_relaxation_round_trips_and_starts_as_damped_persistence(tmp_path: Path) -> None:
    grid = GridInfo.from_arrays(LAT, LON)
    climatology = Climatology(np.full((1, 1, 3, 4), 250.0, dtype=np.float32), annual=0, diurnal=0)
    config = resolve_defaults(FNOConfig(hidden_channels=4, n_layers=1), grid)
    stepper = _prior_stepper(climatology, rate=0.2, mean=250.0, std=2.0, use_history=True)
    schema = DataSchema(channels=(ChannelInfo(name="t", variable="t"),), grid=grid, step_hours=6.0)
    metadata = {"model": {"name": "fno", "config": model_config_to_dict(config)}, "schema": schema.to_dict()}
    bundle = load_bundle(
        save_bundle(tmp_path / "model", stepper=stepper, metadata=metadata, climatology=climatology)
    )
    assert bundle.metadata["stepper"]["relaxation"] is True
    state = torch.full((1, 1, 3, 4), 260.0)
    with torch.no_grad():
        out = bundle.stepper(state, time_hours=torch.zeros(1, dtype=torch.float64))
    assert torch.allclose(out, torch.full_like(state, 258.0))


def test_untrained_stepper_follows_the_climatological_cycle_and_damps_the_anomaly() -> None:
    coefficients = np.zeros((3, 1, 3, 4), dtype=np.float32)
    coefficients[0] = 280.0
    coefficients[2] = 4.0  # diurnal cosine: 284 K at 00 UTC, 280 K at 06 UTC
    climatology = Climatology(coefficients, annual=0, diurnal=1)
    stepper = _prior_stepper(climatology, rate=0.5, mean=280.0, std=3.0, use_history=False)
    state = torch.full((1, 1, 3, 4), 286.0)  # anomaly +2 K at 00 UTC
    with torch.no_grad():
        out = stepper(state, time_hours=torch.zeros(1, dtype=torch.float64))
    assert torch.allclose(out, torch.full_like(state, 281.0), atol=1e-4)  # 280 + 0.5 * 2
