"""The linear spectral prior: the untrained stepper is the baseline, it travels in bundles, `prior = auto`
picks it on the sphere and not on a regional grid, and the lead calibration rolls it out alongside."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr
from torch import nn

from fno_forecast.bundle import load_bundle, save_bundle
from fno_forecast.climatology import fit_climatology
from fno_forecast.data.channels import to_channels
from fno_forecast.data.grid import latitude_weight_tensor
from fno_forecast.data.timeaxis import times_to_hours
from fno_forecast.data.windows import WindowDataset
from fno_forecast.errors import BundleError, ConfigError
from fno_forecast.lead_calibration import LeadCalibration, PriorForecast, calibrate
from fno_forecast.models.linear_spectral import LinearSpectral, fit_linear_spectral
from fno_forecast.models.registry import FNOConfig
from fno_forecast.models.stepper import Stepper, build_stepper
from fno_forecast.output import write_forecast
from fno_forecast.rollout import rollout
from fno_forecast.training.calibration_fit import fit_lead_calibration
from fno_forecast.training.config import TrainConfig
from fno_forecast.training.data_setup import load_training_data
from tests.fixtures.data import load_make_swe

REPO = Path(__file__).resolve().parents[2]
STEPS, RUNS = 40, 5  # 5 runs of 10 days, 4 missing steps between runs
TRAIN, VAL = "2000-01-01/2000-02-12", "2000-02-13/2000-03-31"  # 4 runs train, the last validates


def _swe_dataset() -> xr.Dataset:
    module = load_make_swe()
    return module.make_dataset(
        nlat=9, trajectories=RUNS, steps=STEPS, gap_steps=4, amplitude=0.1, spinup_hours=24.0, seed=5
    )


@pytest.fixture(scope="module")
def swe() -> xr.DataArray:
    return to_channels(_swe_dataset(), step_hours=6.0).array.load()


@pytest.fixture(scope="module")
def swe_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_forecast(_swe_dataset(), tmp_path_factory.mktemp("swe") / "swe.nc")


def _fit(swe: xr.DataArray) -> LinearSpectral:
    train = swe.isel(time=slice(0, STEPS * (RUNS - 1)))
    model = fit_linear_spectral(train, fit_climatology(train, annual=0, diurnal=0), step_hours=6.0)
    assert model is not None
    return model


def _stepper(swe: xr.DataArray, model: LinearSpectral, *, network: nn.Module | None = None) -> Stepper:
    values = swe.values
    stepper = build_stepper(
        model_name="fno",
        model_config=FNOConfig(hidden_channels=8, n_layers=1, n_modes_lat=4, n_modes_lon=4),
        grid_lat=swe["lat"].values,
        grid_lon=swe["lon"].values,
        step_hours=6.0,
        mean=values.mean(axis=(0, 2, 3)),
        std=values.std(axis=(0, 2, 3)),
        tendency_std=np.diff(values, axis=0).std(axis=(0, 2, 3)),
        use_history=True,
        climatology=fit_climatology(swe, annual=0, diurnal=0),
        spectral_prior=model.packed(),
    )
    if network is not None:
        stepper.network = network
    return stepper.eval()


def test_the_untrained_stepper_forecasts_what_the_baseline_forecasts(swe: xr.DataArray) -> None:
    model = _fit(swe)
    stepper = _stepper(swe, model)
    assert stepper.prior == "linear_spectral"
    held = swe.isel(time=slice(STEPS * (RUNS - 1), None)).values
    hours = times_to_hours(swe["time"].values[STEPS * (RUNS - 1) :])
    baseline = list(model.rollout(held[:5], init_hours=hours[:5], step_hours=6.0, n_steps=8))
    prior = list(model.prior_rollout(held[:5], n_steps=8))
    with torch.no_grad():
        produced = list(
            rollout(
                stepper,
                torch.from_numpy(held[:5]),
                time_hours=torch.from_numpy(hours[:5]),
                step_hours=6.0,
                n_steps=8,
            )
        )
    persistence = np.abs(held[8:13] - held[:5]).max(axis=(0, 2, 3))  # its error at 8 steps
    for step, (ours, theirs) in enumerate(zip(produced, prior, strict=True), start=1):
        error = np.abs(ours.numpy() - theirs).max(axis=(0, 2, 3))
        assert np.all(error < 1e-5 * persistence), (step, error, persistence)
    # transforming each state again (the least-squares analysis inverts the synthesis) advances it
    # as the baseline's carried coefficients are, at every step (float32 states: rounding only)
    rounding = 8 * np.finfo(np.float32).eps * np.abs(held).max(axis=(0, 2, 3))
    for step, (ours, theirs) in enumerate(zip(produced, baseline, strict=True), start=1):
        error = np.abs(ours.numpy() - theirs).max(axis=(0, 2, 3))
        assert np.all(error < 1e-4 * persistence + step * rounding), (step, error, persistence)
    persistence_error = np.abs(held[8:13] - held[:5]).mean(axis=(0, 2, 3))
    # and both are far better than persistence: the linear dynamics
    for forecast in (produced[-1].numpy(), baseline[-1]):
        error = np.abs(forecast - held[8:13]).mean(axis=(0, 2, 3))
        assert np.all(error < 0.5 * persistence_error)


def test_a_bundle_with_the_linear_prior_round_trips(swe: xr.DataArray, tmp_path: Path) -> None:
    model = _fit(swe)
    stepper = _stepper(swe, model)
    with torch.no_grad():
        for parameter in stepper.network.parameters():  # a trained network: not zero any more
            parameter.add_(0.01 * torch.randn_like(parameter))
    schema = to_channels(_swe_dataset(), step_hours=6.0).schema
    metadata = {
        "model": {
            "name": "fno",
            "config": dataclasses.asdict(
                FNOConfig(hidden_channels=8, n_layers=1, n_modes_lat=4, n_modes_lon=4)
            ),
        },
        "schema": schema.to_dict(),
    }
    climatology = fit_climatology(swe, annual=0, diurnal=0)
    path = save_bundle(tmp_path / "model", stepper=stepper, metadata=metadata, climatology=climatology)
    saved = json.loads((path / "model.json").read_text())
    assert saved["stepper"]["prior"] == "linear_spectral" and saved["stepper"]["relaxation"] is False
    assert saved["stepper"]["spectral_degrees"] == 9 and saved["stepper"]["spectral_order"] == 1
    assert saved["arrays"]["spectral_maps"] == [9, 27, 27, 2]
    bundle = load_bundle(path)
    assert bundle.stepper.prior == "linear_spectral"
    state = torch.from_numpy(swe.values[:3])
    hours = torch.from_numpy(times_to_hours(swe["time"].values[:3]))
    with torch.no_grad():
        torch.testing.assert_close(
            bundle.stepper(state, time_hours=hours), stepper(state, time_hours=hours), rtol=0, atol=0
        )
    assert saved["stepper"]["spectral_analysis"] == "least_squares"
    # a bundle from before the analysis was recorded keeps the quadrature it was fitted with
    del saved["stepper"]["spectral_analysis"]
    (path / "model.json").write_text(json.dumps(saved))
    assert load_bundle(path).stepper.spectral_prior.analysis == "quadrature"
    saved["stepper"]["spectral_analysis"] = "guess"
    (path / "model.json").write_text(json.dumps(saved))
    with pytest.raises(BundleError, match="spectral_analysis 'guess'"):
        load_bundle(path)
    saved["stepper"]["spectral_analysis"] = "least_squares"
    # metadata that lies about the maps' size is refused before a stepper is built
    saved["stepper"]["spectral_degrees"] = 8
    (path / "model.json").write_text(json.dumps(saved))
    with pytest.raises(BundleError, match="spectral_maps"):
        load_bundle(path)


def test_the_lead_calibration_rolls_the_linear_prior_out(swe: xr.DataArray) -> None:
    class Noise(nn.Module):
        """A network that has learnt nothing useful: a fixed random tendency."""

        def forward(self, inputs: torch.Tensor) -> torch.Tensor:
            generator = torch.Generator().manual_seed(int(inputs.shape[0]))
            return 0.2 * torch.randn(inputs.shape[0], 3, *inputs.shape[2:], generator=generator)

    model = _fit(swe)
    stepper = _stepper(swe, model, network=Noise())
    prior_only = _stepper(swe, model, network=nn.Identity())
    prior_only.network = type("Zero", (nn.Module,), {"forward": lambda self, x: x[:, :3] * 0})()
    state = torch.from_numpy(swe.values[:2])
    hours = torch.from_numpy(times_to_hours(swe["time"].values[:2]))
    with torch.no_grad():
        expected = list(rollout(prior_only, state, time_hours=hours, step_hours=6.0, n_steps=4))
        # a = 0, b = 1: the calibrated forecast is the prior's own rollout, whatever the network did
        produced = list(
            calibrate(
                rollout(stepper, state, time_hours=hours, step_hours=6.0, n_steps=4),
                stepper=stepper,
                state=state,
                time_hours=hours,
                calibration=LeadCalibration(
                    factors=((0.0,) * 3,), prior_weights=((1.0,) * 3,), fitted_on="p", inits=1
                ),
            )
        )
        reference = stepper.climatology_at(hours)
        track = PriorForecast(stepper, state, time_hours=hours, reference_now=reference)
        with pytest.raises(ValueError, match="step 1 asked after step 2"):
            track.anomaly(2, reference_then=reference)
            track.anomaly(1, reference_then=reference)
    for ours, theirs in zip(produced, expected, strict=True):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-3)
    # the calibration drops the noisy network for the prior alone
    held = swe.isel(time=slice(STEPS * (RUNS - 1), None))
    calibration = fit_lead_calibration(
        stepper,
        WindowDataset(held, target_steps=2, use_history=True),
        n_steps=2,
        lat_weights=latitude_weight_tensor(held["lat"].values),
        init_stride=1,
        batch_size=8,
        device=torch.device("cpu"),
        period="held",
    )
    assert calibration is not None
    a, b = np.array(calibration.factors), np.array(calibration.prior_weights)
    np.testing.assert_allclose(a[0], 0.0, atol=0.1)
    np.testing.assert_allclose(b[0], 1.0, atol=0.1)
    assert dict(calibration.picked) == {"prior": 6}  # both steps, three channels: the prior alone


def _config(**values: object) -> tuple[TrainConfig, frozenset[str]]:
    values = {"train_period": TRAIN, "val_period": VAL, "val_leads_hours": (6.0, 24.0), **values}
    return TrainConfig(**values), frozenset(values)  # type: ignore[arg-type]


def test_auto_picks_the_linear_prior_on_the_sphere_and_says_why(swe_file: Path) -> None:
    config, explicit = _config()
    data = load_training_data(str(swe_file), config, explicit=explicit)
    assert data.config is not None and data.config.prior == "linear_spectral"
    assert data.spectral_prior is not None and data.relaxation is None and not data.config.relaxation
    why = data.corrections["prior"]["why"]
    assert (
        data.corrections["prior"]["kept"] and "linear spectral beats the damped prior and persistence" in why
    )
    assert "mean ratio to persistence: damped" in why and "9 degrees" in why
    # the damped prior ruled out: the linear one is still there to choose
    config, explicit = _config(relaxation=False)
    data = load_training_data(str(swe_file), config, explicit=explicit)
    assert data.config is not None and data.config.prior == "linear_spectral"
    assert "beats persistence" in data.corrections["prior"]["why"]
    config, explicit = _config(prior="none")
    data = load_training_data(str(swe_file), config, explicit=explicit)
    assert data.spectral_prior is None and data.relaxation is None


def test_auto_keeps_the_damped_prior_on_a_regional_grid(swe_file: Path, tmp_path: Path) -> None:
    band = xr.open_dataset(swe_file).sel(lat=slice(70, -70)).load()  # no poles
    regional = write_forecast(band, tmp_path / "band.nc")
    config, explicit = _config()
    data = load_training_data(str(regional), config, explicit=explicit)
    assert data.config is not None and data.config.prior == "damped"
    assert data.spectral_prior is None and "prior vs persistence" in data.corrections["relaxation"]["why"]
    config, explicit = _config(prior="linear_spectral")
    with pytest.raises(ConfigError, match="prior = linear_spectral: needs a global equiangular grid"):
        load_training_data(str(regional), config, explicit=explicit)
