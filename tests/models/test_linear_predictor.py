"""The linear AR on principal components as a predictor of the lead calibration: the fit takes it where it
knows what the network does not, the calibrated forecast with its weight alone is the baseline `evaluate`
scores, and it travels in the bundle."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr

from fno_forecast.bundle import load_bundle, save_bundle
from fno_forecast.cli import main
from fno_forecast.climatology import Climatology
from fno_forecast.data.windows import WindowDataset
from fno_forecast.errors import BundleError
from fno_forecast.lead_calibration import LeadCalibration, calibrate
from fno_forecast.linear_ar import fit_linear_ar
from fno_forecast.models.stepper import Stepper
from fno_forecast.rollout import rollout
from fno_forecast.training.calibration_fit import fit_lead_calibration
from tests.fixtures.bundle import tiny_state_array
from tests.fixtures.networks import Constant

LAT = np.linspace(50.0, 40.0, 5)
LON = np.linspace(0.0, 10.0, 6)
CLIM = 280.0
PERIOD = 12  # steps of one turn of the travelling wave


def _wave(n_steps: int, *, seed: int = 0) -> xr.DataArray:
    """A wave travelling along the longitudes, one turn every `PERIOD` steps, with a little noise: linear
    dynamics that persistence and damped persistence miss and a linear AR on two components captures."""
    rng = np.random.default_rng(seed)
    phase = 2 * np.pi * np.arange(n_steps)[:, None, None] / PERIOD
    lon = np.radians(LON)[None, None, :] * 36.0  # one wavelength over the 10 degrees
    amplitude = 3.0 * np.cos(np.radians(LAT))[None, :, None]
    values = CLIM + amplitude * np.cos(lon - phase) + rng.normal(0.0, 0.05, (n_steps, LAT.size, LON.size))
    times = np.datetime64("2013-01-01", "ns") + np.arange(n_steps) * np.timedelta64(6, "h")
    return xr.DataArray(
        values[:, None].astype(np.float32),
        dims=("time", "channel", "lat", "lon"),
        coords={"time": times, "channel": ["air"], "lat": LAT, "lon": LON},
    )


def _climatology() -> Climatology:
    return Climatology(np.full((1, 1, LAT.size, LON.size), CLIM, dtype=np.float32), annual=0, diurnal=0)


def _drifting_stepper() -> Stepper:
    """No prior and a network that adds 0.3 K every step."""
    return Stepper(
        Constant([0.3]),
        mean=np.array([CLIM]),
        std=np.array([3.0]),
        tendency_std=np.array([1.0]),
        lat=LAT,
        lon=LON,
        step_hours=6.0,
        use_history=False,
        climatology=_climatology().coefficients,
    ).eval()


def _fit(dataset: WindowDataset, *, held_out: bool, linear: object) -> LeadCalibration:
    calibration = fit_lead_calibration(
        _drifting_stepper(),
        dataset,
        n_steps=4,
        lat_weights=torch.ones(1, 1, LAT.size, 1),
        init_stride=1,
        batch_size=16,
        device=torch.device("cpu"),
        period="2013-03-01/2013-03-31",
        held_out=held_out,
        linear=linear,  # type: ignore[arg-type]
    )
    assert calibration is not None
    return calibration


def test_the_fit_takes_the_linear_ar_where_it_knows_the_dynamics_the_network_lost() -> None:
    wave = _wave(400)
    linear = fit_linear_ar(wave.isel(time=slice(0, 300)), _climatology(), step_hours=6.0)
    assert linear is not None
    held_out = WindowDataset(wave.isel(time=slice(300, None)), target_steps=4, use_history=False)
    calibration = _fit(held_out, held_out=True, linear=linear)
    assert calibration.linear is linear and calibration.uses_linear
    assert dict(calibration.picked) == {"linear": 4}  # on its own: the blend never weighs it
    np.testing.assert_array_equal(np.array(calibration.linear_weights)[:, 0], 1.0)
    np.testing.assert_array_equal(np.array(calibration.factors)[:, 0], 0.0)
    stepper, state = _drifting_stepper(), torch.from_numpy(wave.values[310:311].copy())
    hours = torch.tensor([310 * 6.0], dtype=torch.float64) + _hours_of(wave, 0)
    produced = calibrate(
        rollout(stepper, state, time_hours=hours, step_hours=6.0, n_steps=4),
        stepper=stepper,
        state=state,
        time_hours=hours,
        calibration=calibration,
    )
    for step, fields in enumerate(produced, start=1):
        truth = torch.from_numpy(wave.values[310 + step : 311 + step])
        assert float((fields - truth).abs().max()) < 0.4  # the wave moved on; persistence errs by up to 6 K
    in_sample = _fit(held_out, held_out=False, linear=linear)  # in sample: the factor alone, no linear AR
    assert in_sample.linear is None and not in_sample.uses_linear


def _hours_of(array: xr.DataArray, index: int) -> float:
    return float(array["time"].values[index].astype("datetime64[s]").astype(np.int64) / 3600.0)


def test_the_calibrated_forecast_with_the_linear_weight_alone_is_the_linear_baseline() -> None:
    """Whatever the recent-anomaly offset: the reference's offset and the predictor's cancel."""
    array = tiny_state_array(n_steps=600)
    climatology = Climatology(
        np.broadcast_to(array.values.mean(0), (1, *array.shape[1:])).copy(), annual=0, diurnal=0
    )
    linear = fit_linear_ar(array, climatology, step_hours=6.0)
    assert linear is not None and linear.n_components == 59
    stepper = Stepper(
        Constant([0.0, 0.0]),
        mean=array.values.mean(axis=(0, 2, 3)),
        std=array.values.std(axis=(0, 2, 3)),
        tendency_std=np.ones(2),
        lat=array["lat"].values,
        lon=array["lon"].values,
        step_hours=6.0,
        use_history=False,
        climatology=climatology.coefficients,
    ).eval()
    zeros = ((0.0, 0.0),) * 3
    calibration = LeadCalibration(
        factors=zeros, linear_weights=((1.0, 1.0),) * 3, linear=linear, fitted_on="p", inits=1
    )
    state = array.values[500:503]
    hours = np.array([_hours_of(array, i) for i in range(500, 503)])
    offset = torch.full((3, 2, *array.shape[2:]), 0.7)
    produced = calibrate(
        rollout(
            stepper, torch.from_numpy(state), time_hours=torch.from_numpy(hours), step_hours=6.0, n_steps=3
        ),
        stepper=stepper,
        state=torch.from_numpy(state),
        time_hours=torch.from_numpy(hours),
        calibration=calibration,
        climatology_offset=offset,
    )
    baseline = linear.rollout(state, init_hours=hours, step_hours=6.0, n_steps=3)
    for fields, expected in zip(produced, baseline, strict=True):
        np.testing.assert_allclose(fields.numpy(), expected, rtol=0, atol=2e-3)


def test_the_linear_ar_travels_in_the_bundle_and_lying_metadata_is_refused(
    tiny_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = load_bundle(tiny_bundle)
    linear = fit_linear_ar(tiny_state_array(n_steps=600), bundle.climatology, step_hours=6.0)
    assert linear is not None
    calibration = LeadCalibration(
        factors=((0.5, 1.0),) * 2, linear_weights=((0.5, 0.0),) * 2, linear=linear, fitted_on="p", inits=9
    )
    metadata = {**bundle.metadata, "lead_calibration": calibration.to_dict()}
    written = save_bundle(
        tmp_path / "with",
        stepper=bundle.stepper,
        metadata=metadata,
        climatology=bundle.climatology,
        linear=linear,
    )
    loaded = load_bundle(written).lead_calibration
    assert loaded is not None and loaded.linear is not None and loaded.uses_linear
    assert loaded.linear.fitted_on == linear.fitted_on and loaded.linear.n_components == linear.n_components
    np.testing.assert_allclose(loaded.linear.transition, linear.transition, rtol=1e-6, atol=1e-6)
    assert json.loads((written / "model.json").read_text())["arrays"]["linear_ar_scale"] == [2 * 8 * 12]
    assert main(["info", str(written)]) == 0
    assert "step 1 a 0.50 e 0.50, a 1.00 e 0.00" in capsys.readouterr().out
    lying = dict(metadata, lead_calibration=dict(metadata["lead_calibration"]))
    lying["lead_calibration"]["linear"] = dict(lying["lead_calibration"]["linear"], components=3)
    (tmp_path / "lying").mkdir()
    for name in ("weights.safetensors", "arrays.safetensors"):
        (tmp_path / "lying" / name).write_bytes((written / name).read_bytes())
    (tmp_path / "lying" / "model.json").write_text(json.dumps(lying))
    with pytest.raises(BundleError, match="linear_ar_components"):
        load_bundle(tmp_path / "lying")
    without = save_bundle(
        tmp_path / "without",
        stepper=bundle.stepper,
        metadata={**metadata, "lead_calibration": {**calibration.to_dict(), "linear": None}},
        climatology=bundle.climatology,
    )
    with pytest.raises(BundleError, match="weighs a linear AR it does not describe"):
        load_bundle(without)
    unusable = replace(calibration, linear=None)  # what `fno-forecast info` reads: weights, no arrays
    with pytest.raises(ValueError, match="linear AR is missing"):
        unusable.weights()
