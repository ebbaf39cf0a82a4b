"""The stepper's conservation laws: held exactly, differentiable, measured on the data they come from."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr

from fno_forecast.data.channels import to_channels
from fno_forecast.data.schema import ChannelInfo, DataSchema, GridInfo
from fno_forecast.errors import ConfigError
from fno_forecast.models.conservation import Conservation, ConservationSpec
from fno_forecast.training.conservation_check import decide_conservation, measure_laws
from tests.fixtures.data import load_make_swe

REPO = Path(__file__).resolve().parents[2]
LAT = np.linspace(90.0, -90.0, 17)
LON = np.arange(32) * 360.0 / 32
SPEC = ConservationSpec(("mass", "angular_momentum", "energy"), mass=0, u=1, v=2)


def _state(seed: int, *, amplitude: float = 1.0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(2, 3, len(LAT), len(LON), generator=generator, dtype=torch.float64)
    base = torch.tensor([10_000.0, 0.0, 0.0], dtype=torch.float64).view(1, 3, 1, 1)
    scale = torch.tensor([300.0, 10.0, 10.0], dtype=torch.float64).view(1, 3, 1, 1)
    return base + amplitude * scale * noise


def test_each_law_holds_the_input_states_value_exactly() -> None:
    laws = Conservation(SPEC, lat=LAT, lon=LON).double()
    state = _state(0)
    wild = state + 0.3 * (_state(1) - state) + torch.tensor([25.0, 4.0, 0.0]).double().view(1, 3, 1, 1)
    fixed = laws(state, wild * 1.5)  # more mass, a westerly spin-up and far more energy
    h, u, v = state[:, 0], state[:, 1], state[:, 2]
    fh, fu, fv = fixed[:, 0], fixed[:, 1], fixed[:, 2]
    torch.testing.assert_close(laws.area_mean(fh), laws.area_mean(h), rtol=1e-12, atol=0)
    torch.testing.assert_close(laws.angular_momentum(fh, fu), laws.angular_momentum(h, u), rtol=1e-12, atol=0)
    assert (laws.energy(fh, fu, fv) <= laws.energy(h, u, v) * (1 + 1e-6)).all()  # three rounds
    assert (laws.energy(wild[:, 0] * 1.5, wild[:, 1] * 1.5, wild[:, 2] * 1.5) > laws.energy(h, u, v)).all()


def test_the_energy_bound_takes_the_measured_loss_of_a_step_and_travels_with_the_spec() -> None:
    spec = ConservationSpec(SPEC.laws, mass=0, u=1, v=2, energy_ratio=0.99)
    laws = Conservation(spec, lat=LAT, lon=LON).double()
    state = _state(0)
    fixed = laws(state, state.clone())  # a step that keeps all its energy loses 1% of it
    before = laws.energy(state[:, 0], state[:, 1], state[:, 2])
    after = laws.energy(fixed[:, 0], fixed[:, 1], fixed[:, 2])
    torch.testing.assert_close(after, 0.99 * before, rtol=1e-5, atol=0)  # three rounds
    torch.testing.assert_close(laws.area_mean(fixed[:, 0]), laws.area_mean(state[:, 0]), rtol=1e-12, atol=0)
    names = ("h", "u", "v")
    assert spec.to_dict(names)["energy_ratio"] == 0.99
    assert ConservationSpec.from_dict(spec.to_dict(names), names) == spec
    assert ConservationSpec.from_dict(SPEC.to_dict(names), names).energy_ratio == 1.0  # older bundles
    with pytest.raises(ValueError, match="energy_ratio must be in"):
        ConservationSpec(SPEC.laws, mass=0, u=1, v=2, energy_ratio=1.5)


def test_a_step_that_already_obeys_the_laws_is_left_alone() -> None:
    laws = Conservation(SPEC, lat=LAT, lon=LON).double()
    state = _state(2)
    quieter = state.clone()
    quieter[:, 2] *= 0.9  # less energy; the mass and angular momentum (u untouched) are the state's
    torch.testing.assert_close(laws(state, quieter), quieter, rtol=1e-12, atol=1e-9)


def test_the_laws_are_differentiable_and_only_the_listed_ones_apply() -> None:
    state = _state(3).float()
    following = (state * 1.01).requires_grad_()
    Conservation(SPEC, lat=LAT, lon=LON)(state, following).sum().backward()
    assert following.grad is not None and torch.isfinite(following.grad).all()
    only_mass = Conservation(ConservationSpec(("mass",), mass=0), lat=LAT, lon=LON).double()
    s = _state(4)
    out = only_mass(s, s * 1.01)
    torch.testing.assert_close(out[:, 1:], s[:, 1:] * 1.01)  # the wind untouched


def test_the_pole_rows_are_filled_from_their_neighbours_as_one_point() -> None:
    spec = ConservationSpec(("poles",), pole_orders=(0, 1, 1))
    laws = Conservation(spec, lat=LAT, lon=LON).double()
    lon = torch.from_numpy(np.deg2rad(LON))
    smooth = torch.zeros(1, 3, len(LAT), len(LON), dtype=torch.float64)
    colat = torch.from_numpy(np.deg2rad(90.0 - LAT))[:, None]
    smooth[0, 0] = 10_000.0 + 50.0 * torch.cos(colat)  # h: one value at each pole
    smooth[0, 1] = 5.0 * torch.cos(lon)[None, :] * torch.cos(colat)  # a wind with wavenumber 1
    noisy = smooth.clone()
    noisy[:, :, [0, -1]] += 300.0 * torch.randn(1, 3, 2, len(LON), dtype=torch.float64)  # free pole rows
    fixed = laws(smooth, noisy)
    torch.testing.assert_close(fixed[:, :, 1:-1], noisy[:, :, 1:-1])  # the other rows untouched
    assert fixed[0, 0, 0].std() < 1e-9 and fixed[0, 0, -1].std() < 1e-9  # a scalar: one value per pole
    # (4 f1 - f2) / 3 of a field even about the pole recovers its pole value to O(dlat^4)
    torch.testing.assert_close(fixed[0, 0, 0], smooth[0, 0, 0], rtol=0, atol=0.02)  # 4 c dlat^4: 0.012 m
    power = torch.fft.rfft(fixed[0, 1, 0]).abs()
    assert power[1] > 1.0 and (power[[0, *range(2, power.numel())]] < 1e-9).all()  # the wind: wavenumber 1
    with pytest.raises(ValueError, match="not the poles"):
        Conservation(spec, lat=LAT[1:-1], lon=LON)


def test_a_spec_names_its_channels_and_refuses_what_it_cannot_hold() -> None:
    names = ("h", "u", "v")
    assert ConservationSpec.from_dict(SPEC.to_dict(names), names) == SPEC
    poles = ConservationSpec(("poles", "mass"), mass=0, pole_orders=(0, 1, 1))
    assert ConservationSpec.from_dict(poles.to_dict(names), names) == poles
    assert SPEC.to_dict(names) == {
        "laws": ["mass", "angular_momentum", "energy"],
        "mass": "h",
        "u": "u",
        "v": "v",
    }
    with pytest.raises(ValueError, match="needs the u, v channel"):
        ConservationSpec(("energy",), mass=0)
    with pytest.raises(ValueError, match="unknown law"):
        ConservationSpec(("momentum",))
    with pytest.raises(ValueError, match="'w' is not one of"):
        ConservationSpec.from_dict({"laws": ["mass"], "mass": "w"}, names)


@pytest.fixture(scope="module")
def swe() -> xr.DataArray:
    module = load_make_swe()
    dataset = module.make_dataset(nlat=17, trajectories=3, steps=24, gap_steps=4, amplitude=1.0, seed=5)
    return to_channels(dataset, step_hours=6.0).array.load()


def _schema(array: xr.DataArray, names: tuple[str, ...]) -> DataSchema:
    grid = GridInfo.from_arrays(array["lat"].values, array["lon"].values)
    return DataSchema(channels=tuple(ChannelInfo(n, n) for n in names), grid=grid, step_hours=6.0)


def test_shallow_water_data_obey_all_four_and_say_by_how_much(swe: xr.DataArray) -> None:
    spec, why = measure_laws(swe, _schema(swe, ("h", "u", "v")))
    ratio = spec.energy_ratio
    assert spec == ConservationSpec(
        ("poles", *SPEC.laws), mass=0, u=1, v=2, pole_orders=(0, 1, 1), energy_ratio=ratio
    )
    # the bound is the slowest loss of any step: every consecutive pair of the data obeys it, and it bites
    laws = Conservation(spec, lat=swe["lat"].values, lon=swe["lon"].values).double()
    values = torch.from_numpy(swe.values.astype(np.float64))
    energy = laws.energy(values[:, 0], values[:, 1], values[:, 2]).numpy()
    linked = np.diff(swe["time"].values).astype("timedelta64[h]").astype(int) == 6
    ratios = energy[1:][linked] / energy[:-1][linked]
    assert ratios.max() <= ratio < 1.0 and ratio - ratios.max() < 1e-5
    assert "h's global mean varies" in why and "energy's largest gain in a step -" in why
    assert f"a step keeps at most {ratio:.5f} of it" in why
    assert "the pole rows hold zonal wavenumbers [0, 1, 1] (power off them" in why


def test_data_that_break_a_law_do_not_get_it(swe: xr.DataArray) -> None:
    schema = _schema(swe, ("h", "u", "v"))
    # a seasonal cycle in the layer height: no channel's global mean is invariant, so no law at all
    hours = (swe["time"] - swe["time"][0]) / np.timedelta64(1, "h")
    cycle = xr.zeros_like(swe) + (50.0 * np.sin(2 * np.pi * hours / 48.0)).values[:, None, None, None]
    cycle[:, 1:] = 0.0
    spec, why = measure_laws(swe + cycle, schema)
    assert spec.laws == ("poles",) and "no single-level channel's global mean is invariant" in why
    # a pole row that varies along longitude in every wavenumber is not one point
    rough = swe.copy()
    rough[:, 0, 0] = swe[:, 0, 0] + 5.0 * np.random.default_rng(0).standard_normal(rough[:, 0, 0].shape)
    spec, why = measure_laws(rough, schema)
    assert "poles" not in spec.laws and "mass" in spec.laws
    # energy pumped in a step at a time: the mass and momentum stay, the energy law goes
    growing = swe.copy()
    growing[:, 1:] = swe[:, 1:] * (1.0 + 0.01 * np.arange(swe.sizes["time"]))[:, None, None, None]
    spec, why = measure_laws(growing, schema)
    assert "energy" not in spec.laws and "mass" in spec.laws
    # a regional cut holds nothing
    regional = swe.isel(lat=slice(2, 10), lon=slice(0, 12))
    spec, why = measure_laws(regional, _schema(regional, ("h", "u", "v")))
    assert spec.laws == () and "regional" in why


def test_the_config_picks_auto_a_list_or_none(swe: xr.DataArray) -> None:
    schema = _schema(swe, ("h", "u", "v"))
    spec, choice = decide_conservation(("auto",), swe, schema)
    assert spec.laws == ("poles", *SPEC.laws) and choice.value == spec.laws
    spec, choice = decide_conservation(("mass",), swe, schema)
    assert spec.laws == ("mass",) and choice.why.startswith("as set")
    spec, choice = decide_conservation((), swe, schema)
    assert spec.laws == ()
    # unknown laws and 'auto' beside laws are the config's to refuse (the last test)
    no_wind = _schema(swe, ("h", "p", "q"))
    with pytest.raises(ConfigError, match="needs the u, v channel"):
        decide_conservation(("energy",), swe, no_wind)


def test_a_model_trained_on_shallow_water_keeps_the_laws_in_its_bundle_and_its_forecasts(
    swe: xr.DataArray, tmp_path: Path
) -> None:
    from fno_forecast.bundle import load_bundle
    from fno_forecast.cli import main as cli
    from fno_forecast.rollout import rollout
    from tests.training.helpers import train_args

    data = tmp_path / "swe.nc"
    swe.to_dataset(dim="channel").to_netcdf(data)
    out = tmp_path / "run"
    periods = ["--train-period", "2000-01-01/2000-01-12", "--val-period", "2000-01-13/2000-01-31"]
    assert cli(train_args(data, out, *periods, "--set", "recent_anomaly=false")) == 0
    bundle = load_bundle(out / "model")
    laws = bundle.stepper.conservation
    assert laws is not None and laws.spec.laws == ("poles", *SPEC.laws)
    state = torch.from_numpy(swe.isel(time=[30]).values.astype(np.float32))
    hours = torch.tensor([float((swe["time"][30] - np.datetime64("1970-01-01")) / np.timedelta64(1, "h"))])
    with torch.inference_mode():
        states = list(rollout(bundle.stepper, state, time_hours=hours.double(), step_hours=6.0, n_steps=20))
    h, u, v = state[:, 0].double(), state[:, 1].double(), state[:, 2].double()
    checks = Conservation(laws.spec, lat=swe["lat"].values, lon=swe["lon"].values).double()
    last = states[-1].double()
    assert abs(float(checks.area_mean(last[:, 0]) / checks.area_mean(h)) - 1.0) < 1e-6
    momentum = checks.angular_momentum(last[:, 0], last[:, 1]) / checks.angular_momentum(h, u)
    assert abs(float(momentum) - 1.0) < 1e-5
    assert laws.spec.energy_ratio < 1.0  # measured on the training data
    bound = float(checks.energy(h, u, v)) * laws.spec.energy_ratio**20
    assert float(checks.energy(last[:, 0], last[:, 1], last[:, 2])) <= bound * (1 + 1e-5)
    assert float(last[0, 0, 0].std()) < 1e-3 * float(h.std())  # the north pole is one point


def test_the_config_refuses_an_unknown_law_before_any_data_is_read() -> None:
    from fno_forecast.training.config import build_config

    assert build_config({"conservation": ["poles", "mass"]}).conservation == ("poles", "mass")
    with pytest.raises(ConfigError, match=r"conservation: expected \["):
        build_config({"conservation": ["momentum"]})
    with pytest.raises(ConfigError, match=r"conservation: expected \["):
        build_config({"conservation": ["auto", "mass"]})
