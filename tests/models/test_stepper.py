"""Stepper: physical units in and out, residual over the tendency std, forcings; rollout."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from fno_forecast.climatology import Climatology
from fno_forecast.errors import ForecastError
from fno_forecast.models.stepper import Stepper, stepper_in_channels
from fno_forecast.rollout import rollout
from tests.fixtures.networks import Constant

LAT = np.linspace(60.0, 20.0, 5)
LON = np.linspace(200.0, 230.0, 7)


def make_stepper(
    network: nn.Module, *, use_history: bool = True, climatology: Climatology | None = None
) -> Stepper:
    return Stepper(
        network,
        mean=np.array([280.0, 5500.0]),
        std=np.array([10.0, 100.0]),
        tendency_std=np.array([2.0, 20.0]),
        lat=LAT,
        lon=LON,
        step_hours=6.0,
        use_history=use_history,
        climatology=None if climatology is None else climatology.coefficients,
        climatology_annual=0 if climatology is None else climatology.annual,
        climatology_diurnal=0 if climatology is None else climatology.diurnal,
    )


def test_residual_is_scaled_by_tendency_std_in_physical_units() -> None:
    stepper = make_stepper(Constant([0.5, -1.0]))
    state = torch.full((3, 2, 5, 7), 1.0)
    state[:, 0] = 290.0
    state[:, 1] = 5600.0
    out = stepper(state, time_hours=torch.zeros(3, dtype=torch.float64))
    assert torch.allclose(out[:, 0], torch.full((3, 5, 7), 291.0))
    assert torch.allclose(out[:, 1], torch.full((3, 5, 7), 5580.0))


def test_inputs_are_normalised_with_history_time_and_static_features() -> None:
    net = Constant([0.0, 0.0])
    stepper = make_stepper(net)
    state = torch.tensor([290.0, 5600.0]).view(1, 2, 1, 1).expand(1, 2, 5, 7).clone()
    previous = torch.tensor([270.0, 5400.0]).view(1, 2, 1, 1).expand(1, 2, 5, 7).clone()
    hours = torch.tensor([18.0], dtype=torch.float64)  # state at 18 UTC -> target 00 UTC
    stepper(state, time_hours=hours, previous=previous)
    x = net.last_input
    assert x is not None and x.shape[1] == stepper_in_channels(2, use_history=True, use_climatology=False)
    assert torch.allclose(x[0, 0], torch.ones(5, 7)) and torch.allclose(x[0, 1], torch.ones(5, 7))
    assert torch.allclose(x[0, 2], -torch.ones(5, 7)) and torch.allclose(x[0, 3], -torch.ones(5, 7))
    assert torch.allclose(x[0, 4], torch.zeros(5, 7), atol=1e-6)  # sin(hour of day) at 00 UTC
    assert torch.allclose(x[0, 5], torch.ones(5, 7))  # cos(hour of day) at 00 UTC
    assert math.isclose(float(x[0, 8, 0, 0]), math.sin(math.radians(60.0)), rel_tol=1e-5)
    assert math.isclose(float(x[0, 11, 0, 6]), math.cos(math.radians(230.0)), rel_tol=1e-5)
    stepper(state, time_hours=hours)  # without previous: the state stands in for it
    assert torch.allclose(net.last_input[0, 2], torch.ones(5, 7))


def test_climatology_forcing_is_the_target_time_climatology() -> None:
    coefficients = np.zeros((3, 2, 5, 7), dtype=np.float32)
    coefficients[0, 0] = 280.0
    coefficients[0, 1] = 5500.0
    coefficients[1, 0] = 10.0  # annual sine amplitude of channel 0
    climatology = Climatology(coefficients, annual=1, diurnal=0)
    net = Constant([0.0, 0.0])
    stepper = make_stepper(net, use_history=False, climatology=climatology)
    hours = torch.tensor([1000.0, 3000.0], dtype=torch.float64)
    stepper(torch.full((2, 2, 5, 7), 280.0), time_hours=hours)
    expected = climatology.at_hours((hours + 6.0).numpy())
    assert torch.allclose(
        net.last_input[:, 2:4], (torch.from_numpy(expected) - stepper.mean) / stepper.std, atol=1e-5
    )


def test_wrong_channel_count_is_refused() -> None:
    stepper = make_stepper(Constant([0.0, 0.0]))
    with pytest.raises(ValueError, match="expected state \\(batch, 2, lat, lon\\)"):
        stepper(torch.zeros(1, 3, 5, 7), time_hours=torch.zeros(1, dtype=torch.float64))


def test_rollout_feeds_predictions_back_and_advances_time() -> None:
    stepper = make_stepper(Constant([1.0, 0.0]))
    state = torch.full((1, 2, 5, 7), 280.0)
    states = list(
        rollout(stepper, state, time_hours=torch.zeros(1, dtype=torch.float64), step_hours=6.0, n_steps=4)
    )
    assert [float(s[0, 0, 0, 0]) for s in states] == [282.0, 284.0, 286.0, 288.0]


def test_rollout_names_the_step_that_blew_up() -> None:
    class Explodes(Constant):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x[:, :2] * 1e19

    stepper = make_stepper(Explodes([0.0, 0.0]))
    with pytest.raises(ForecastError, match="step 2 \\(lead 12 h\\)"):
        list(
            rollout(
                stepper,
                torch.full((1, 2, 5, 7), 400.0),
                time_hours=torch.zeros(1, dtype=torch.float64),
                step_hours=6.0,
                n_steps=5,
            )
        )


def test_relaxation_pulls_the_state_toward_the_target_climatology() -> None:
    coefficients = np.zeros((1, 2, 5, 7), dtype=np.float32)
    coefficients[0, 0], coefficients[0, 1] = 280.0, 5500.0
    climatology = Climatology(coefficients, annual=0, diurnal=0)
    relaxation = np.full((2, 5, 7), 0.25, dtype=np.float32)
    stepper = Stepper(
        Constant([0.0, 0.0]),
        mean=np.array([280.0, 5500.0]),
        std=np.array([10.0, 100.0]),
        tendency_std=np.array([2.0, 20.0]),
        lat=LAT,
        lon=LON,
        step_hours=6.0,
        use_history=False,
        climatology=climatology.coefficients,
        relaxation=relaxation,
    )
    state = torch.tensor([290.0, 5300.0]).view(1, 2, 1, 1).expand(1, 2, 5, 7).clone()
    out = stepper(state, time_hours=torch.zeros(1, dtype=torch.float64))
    assert torch.allclose(out[0, :, 2, 3], torch.tensor([287.5, 5350.0]))
    with pytest.raises(ValueError, match="needs the climatology"):
        Stepper(
            Constant([0.0]),
            mean=np.array([1.0]),
            std=np.array([1.0]),
            tendency_std=np.array([1.0]),
            lat=LAT,
            lon=LON,
            step_hours=6.0,
            use_history=False,
            relaxation=np.zeros((1, 5, 7)),
        )
