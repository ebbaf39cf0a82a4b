"""Per-lead calibration: the fit recovers a known ratio, picks persistence or the climatology where they
win, and the rollout applies the weights to what it yields."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

from fno_forecast.data.windows import WindowDataset
from fno_forecast.lead_calibration import LeadCalibration, calibrate
from fno_forecast.models.stepper import Stepper
from fno_forecast.rollout import rollout
from fno_forecast.training.calibration_fit import BATCH_BYTES, _pick, calibration_batch, fit_lead_calibration
from tests.fixtures.networks import Constant

LAT = np.linspace(50.0, 40.0, 5)
LON = np.linspace(0.0, 10.0, 6)
CLIM = 280.0


def _stepper(decay: float) -> Stepper:
    """A stepper whose anomalies from a constant climatology shrink by `decay` each step."""
    return Stepper(
        Constant([0.0]),
        mean=np.array([CLIM]),
        std=np.array([5.0]),
        tendency_std=np.array([1.0]),
        lat=LAT,
        lon=LON,
        step_hours=6.0,
        use_history=False,
        climatology=np.full((1, 1, LAT.size, LON.size), CLIM, dtype=np.float32),
        relaxation=np.full((1, LAT.size, LON.size), 1.0 - decay, dtype=np.float32),
    ).eval()


def _decaying_truth(decay: float, n_steps: int = 60) -> xr.DataArray:
    rng = np.random.default_rng(0)
    start = rng.normal(0.0, 3.0, (1, LAT.size, LON.size))
    values = CLIM + start[None] * decay ** np.arange(n_steps)[:, None, None, None]
    times = np.datetime64("2013-01-01", "ns") + np.arange(n_steps) * np.timedelta64(6, "h")
    return xr.DataArray(
        values.astype(np.float32),
        dims=("time", "channel", "lat", "lon"),
        coords={"time": times, "channel": ["air"], "lat": LAT, "lon": LON},
    )


def _fit(
    stepper: Stepper, dataset: WindowDataset, *, n_steps: int, **options: object
) -> LeadCalibration | None:
    """The fit on every window, on CPU, with equal latitude weights."""
    return fit_lead_calibration(
        stepper,
        dataset,
        n_steps=n_steps,
        lat_weights=torch.ones(1, 1, LAT.size, 1),
        init_stride=1,
        batch_size=16,
        device=torch.device("cpu"),
        period="2013-01-01/2013-01-15",
        **options,  # type: ignore[arg-type]
    )


def test_fit_recovers_the_ratio_of_true_to_forecast_decay() -> None:
    truth = _decaying_truth(0.9)
    dataset = WindowDataset(truth, target_steps=4, use_history=False)
    calibration = _fit(_stepper(0.8), dataset, n_steps=4)
    assert calibration is not None and calibration.inits == len(dataset)
    # With no network the forecast is its prior: only the sum of the two weights is determined.
    fitted = [a[0] + b[0] for a, b in zip(calibration.factors, calibration.prior_weights, strict=True)]
    expected = [min(2.0, (0.9 / 0.8) ** k) for k in range(1, 5)]
    np.testing.assert_allclose(fitted, expected, rtol=1e-3)
    assert calibration.kept == 4 and not calibration.held_out and dict(calibration.picked) == {"blend": 4}


def _drifting_stepper(drift: float) -> Stepper:
    """No prior (persistence) and a network that adds `drift` K every step: a forecast gone wrong."""
    return Stepper(
        Constant([drift]),
        mean=np.array([CLIM]),
        std=np.array([5.0]),
        tendency_std=np.array([1.0]),
        lat=LAT,
        lon=LON,
        step_hours=6.0,
        use_history=False,
        climatology=np.full((1, 1, LAT.size, LON.size), CLIM, dtype=np.float32),
    ).eval()


def test_fit_picks_persistence_where_the_network_has_lost_the_truth() -> None:
    truth = _decaying_truth(1.0)  # the anomaly persists: persistence is exact
    dataset = WindowDataset(truth, target_steps=3, use_history=False)
    stepper = _drifting_stepper(0.7)
    calibration = _fit(stepper, dataset, n_steps=3, held_out=True)
    assert calibration is not None and calibration.held_out
    assert dict(calibration.picked) == {"persistence": 3}
    np.testing.assert_array_equal(np.array(calibration.factors)[:, 0], 0.0)
    np.testing.assert_array_equal(np.array(calibration.persistence_weights)[:, 0], 1.0)
    state = torch.from_numpy(truth.values[:1].copy())
    hours = torch.tensor([0.0], dtype=torch.float64)
    produced = list(
        calibrate(
            rollout(stepper, state, time_hours=hours, step_hours=6.0, n_steps=3),
            stepper=stepper,
            state=state,
            time_hours=hours,
            calibration=calibration,
        )
    )
    for step, fields in enumerate(produced, start=1):
        torch.testing.assert_close(fields, torch.from_numpy(truth.values[step : step + 1]), atol=0.1, rtol=0)


def test_rollout_scales_what_it_yields_and_not_the_state_it_feeds_back() -> None:
    stepper = _stepper(0.8)
    state = torch.full((1, 1, LAT.size, LON.size), CLIM + 2.0)
    hours = torch.tensor([0.0], dtype=torch.float64)
    plain = list(rollout(stepper, state, time_hours=hours, step_hours=6.0, n_steps=3))
    factors = LeadCalibration(factors=((1.0,), (0.5,)), fitted_on="p", inits=1)
    scaled = list(
        calibrate(
            rollout(stepper, state, time_hours=hours, step_hours=6.0, n_steps=3),
            stepper=stepper,
            state=state,
            time_hours=hours,
            calibration=factors,
        )
    )
    torch.testing.assert_close(scaled[0], plain[0])
    torch.testing.assert_close(scaled[1] - CLIM, 0.5 * (plain[1] - CLIM), atol=1e-4, rtol=0)
    torch.testing.assert_close(scaled[2] - CLIM, 0.5 * (plain[2] - CLIM), atol=1e-4, rtol=0)  # last factor
    offset = torch.full_like(state, 1.0)
    zero = list(
        calibrate(
            rollout(stepper, state, time_hours=hours, step_hours=6.0, n_steps=1, climatology_offset=offset),
            stepper=stepper,
            state=state,
            time_hours=hours,
            calibration=LeadCalibration(factors=((0.0,),), fitted_on="p", inits=1),
            climatology_offset=offset,
        )
    )
    torch.testing.assert_close(zero[0], torch.full_like(state, CLIM + 1.0))  # the offset climatology
    undone = LeadCalibration(factors=((0.0,),), offset_weights=((-1.0,),), fitted_on="p", inits=1)
    plain_climatology = list(
        calibrate(
            rollout(stepper, state, time_hours=hours, step_hours=6.0, n_steps=1, climatology_offset=offset),
            stepper=stepper,
            state=state,
            time_hours=hours,
            calibration=undone,
            climatology_offset=offset,
        )
    )
    torch.testing.assert_close(plain_climatology[0], torch.full_like(state, CLIM))  # d = -1 undoes it


def test_calibration_round_trips_and_refuses_bad_factors() -> None:
    calibration = LeadCalibration(factors=((1.0, 0.9), (0.8, 0.7)), fitted_on="p", inits=3)
    assert LeadCalibration.from_dict(calibration.to_dict()) == calibration
    blended = LeadCalibration(
        factors=((1.0, 0.9), (0.8, 0.7)), prior_weights=((0.0, 0.1), (0.3, -0.2)), fitted_on="p", inits=3
    )
    assert LeadCalibration.from_dict(blended.to_dict()) == blended
    full = LeadCalibration(
        factors=((1.0,),),
        prior_weights=((0.2,),),
        persistence_weights=((0.5,),),
        offset_weights=((-1.0,),),
        picked=(("blend", 1),),
        fitted_on="p",
        inits=3,
    )
    assert LeadCalibration.from_dict(full.to_dict()) == full
    with pytest.raises(ValueError, match="picked names"):
        LeadCalibration(factors=((1.0,),), picked=(("oracle", 1),), fitted_on="p", inits=3)
    with pytest.raises(ValueError, match="shape of factors"):
        LeadCalibration.from_dict({**blended.to_dict(), "prior_weights": [[0.0]]})
    with pytest.raises(ValueError, match="equal-length rows"):
        LeadCalibration.from_dict({"factors": [[1.0], [1.0, 2.0]], "fitted_on": "p", "inits": 1})
    with pytest.raises(ValueError, match="must lie in"):
        LeadCalibration.from_dict({"factors": [[5.0]], "fitted_on": "p", "inits": 1})


def test_fit_picks_the_climatology_where_nothing_predicts_and_re_weighs_but_keeps_the_offset() -> None:
    """Anomalies that are white noise in time: no forecast beats the climatology. With a recent-anomaly
    offset (here a constant 1 K that the truth does not have) the climatology without it is no
    candidate: the blend re-weighs the offset toward -1 as far as its ridge lets the tail's evidence."""
    rng = np.random.default_rng(1)
    values = CLIM + rng.normal(0.0, 2.0, (80, 1, LAT.size, LON.size))
    times = np.datetime64("2013-01-01", "ns") + np.arange(80) * np.timedelta64(6, "h")
    truth = xr.DataArray(
        values.astype(np.float32),
        dims=("time", "channel", "lat", "lon"),
        coords={"time": times, "channel": ["air"], "lat": LAT, "lon": LON},
    )
    dataset = WindowDataset(truth, target_steps=3, use_history=False)
    stepper = _drifting_stepper(0.0)  # the plain forecast is persistence
    state = torch.from_numpy(truth.values[:2].copy())
    hours = torch.tensor([0.0, 6.0], dtype=torch.float64)
    calibration = _fit(stepper, dataset, n_steps=3, held_out=True)
    # the climatology, or at a lead a blend that weighs the collinear network and persistence to it
    assert calibration is not None and dict(calibration.picked).get("climatology", 0) >= 2
    steps = rollout(stepper, state, time_hours=hours, step_hours=6.0, n_steps=3)
    produced = calibrate(steps, stepper=stepper, state=state, time_hours=hours, calibration=calibration)
    anomaly_power = float(((state - CLIM) ** 2).mean())  # persistence's error, about 4 K^2
    for fields in produced:
        assert float(((fields - CLIM) ** 2).mean()) < 0.01 * anomaly_power

    offsets = lambda indices: torch.ones(len(indices), 1, LAT.size, LON.size)  # noqa: E731
    offset = torch.ones_like(state)
    target = torch.full_like(state, CLIM)  # the truth's expectation

    def error_of(fitted: LeadCalibration) -> float:
        steps = rollout(
            stepper, state, time_hours=hours, step_hours=6.0, n_steps=3, climatology_offset=offset
        )
        produced = calibrate(
            steps,
            stepper=stepper,
            state=state,
            time_hours=hours,
            calibration=fitted,
            climatology_offset=offset,
        )
        return max(float(((fields - target) ** 2).mean()) for fields in produced)

    re_weighed = _fit(stepper, dataset, n_steps=3, held_out=True, offsets_for=offsets)
    assert re_weighed is not None and "climatology" not in dict(re_weighed.picked)
    weights = np.array(re_weighed.offset_weights)[:, 0]
    assert np.all(weights < -0.2) and np.all(weights > -1.0)  # toward -1, held by the ridge
    # `reweigh_offset = False` (`calibration_offset = false`): the offset keeps the weight of its own
    # fit, 0 here; what the fit may still do is shrink
    kept = _fit(stepper, dataset, n_steps=3, held_out=True, offsets_for=offsets, reweigh_offset=False)
    assert kept is not None and "climatology" not in dict(kept.picked) and "plain" not in dict(kept.picked)
    np.testing.assert_array_equal(np.array(kept.offset_weights)[:, 0], 0.0)
    persistence_error = float(((state - target) ** 2).mean())
    assert error_of(kept) < 0.4 * persistence_error  # near the reference with its offset: about 1 K^2
    assert error_of(re_weighed) < 0.6 * error_of(kept)  # re-weighed, the offset's error shrinks


def test_the_offset_moves_where_it_weighs_in_the_forecast_not_where_it_is_small() -> None:
    """The truth's anomaly is minus the offset plus noise, so the unpenalised weight is -1 whatever the
    offset's size. `OFFSET_RIDGE`, relative to the mean anomaly power, lets a large offset (3 K against
    anomalies of 1 K, as the 1-day offset of an hourly set) move most of the way and holds a small one
    (0.3 K, as a 21-day offset on 6-hourly data) near the weight of its own fit."""
    rng = np.random.default_rng(4)
    noise, network = rng.normal(0.0, 1.0, (2, 4000))
    zeros = np.zeros_like(noise)
    active = torch.tensor([True, False, False, True, False])
    weight = {}
    for size in (3.0, 0.3):
        offset = rng.normal(0.0, size, noise.size)
        columns = np.stack([network, zeros, zeros, offset, zeros, noise - offset], axis=1)
        calibration = _pick(
            _gram(columns), active=active, saw_offset=True, period="p", inits=noise.size, held_out=True
        )
        assert set(dict(calibration.picked)) <= {"blend", "shrunk"}
        weight[size] = calibration.offset_weights[0][0]
    assert -0.9 < weight[3.0] < -0.7 and -0.35 < weight[0.3] < -0.15


def test_a_candidate_must_beat_the_plain_forecast_in_every_block_of_inits() -> None:
    """White-noise anomalies for three quarters of the inits (the climatology wins there), then a
    persistent anomaly (the plain forecast, persistence here, is exact): the climatology has the lower
    total error but loses one block, so the plain forecast stays."""
    rng = np.random.default_rng(2)
    values = CLIM + rng.normal(0.0, 2.0, (80, 1, LAT.size, LON.size))
    values[60:] = CLIM + 2.0
    times = np.datetime64("2013-01-01", "ns") + np.arange(80) * np.timedelta64(6, "h")
    truth = xr.DataArray(
        values.astype(np.float32),
        dims=("time", "channel", "lat", "lon"),
        coords={"time": times, "channel": ["air"], "lat": LAT, "lon": LON},
    )
    stepper = _drifting_stepper(0.0)
    calibration = _fit(
        stepper, WindowDataset(truth, target_steps=1, use_history=False), n_steps=1, held_out=True
    )
    assert calibration is not None and dict(calibration.picked) == {"plain": 1}
    plain_error = ((values[1:] - values[:-1]) ** 2).mean()
    climatology_error = ((values[1:] - CLIM) ** 2).mean()
    assert climatology_error < plain_error  # the climatology wins in total: the block rule kept the plain


def _gram(columns: np.ndarray, *, blocks: int = 4) -> torch.Tensor:
    """The sums `_pick` takes, `(blocks, 1 lead, 1 channel, P + 1, P + 1)`, from per-init columns
    `(inits, P + 1)` (the predictors' anomalies, then the observed), in consecutive blocks."""
    parts = np.array_split(columns, blocks)
    return torch.tensor(np.stack([p.T @ p for p in parts]), dtype=torch.float64)[:, None, None]


def test_fit_shrinks_a_noisy_network_toward_the_climatology_by_one_factor() -> None:
    """The network's anomaly is the truth's plus noise of equal power: the plain forecast and the
    climatology err alike (1 per init), the best single factor is 1/2 and halves the error, as an
    ensemble mean would. A network whose anomaly is too weak is not amplified by the shrunk forecast
    (its factor is at most 1); the blend may do that."""
    rng = np.random.default_rng(3)
    observed = rng.normal(0.0, 1.0, 4000)
    network = observed + rng.normal(0.0, 1.0, observed.size)
    zeros = np.zeros_like(observed)
    columns = np.stack([network, zeros, zeros, zeros, zeros, observed], axis=1)
    active = torch.tensor([True, False, False, False, False])
    calibration = _pick(
        _gram(columns), active=active, saw_offset=False, period="p", inits=observed.size, held_out=True
    )
    assert dict(calibration.picked) == {"shrunk": 1}
    assert calibration.factors[0][0] == pytest.approx(0.5, abs=0.03)
    assert calibration.held_out_gain == pytest.approx(0.5, abs=0.05)
    weak = np.stack([0.5 * observed, zeros, zeros, zeros, zeros, observed], axis=1)
    calibration = _pick(
        _gram(weak), active=active, saw_offset=False, period="p", inits=observed.size, held_out=True
    )
    assert dict(calibration.picked) == {"blend": 1} and calibration.factors[0][0] == pytest.approx(
        2.0, abs=0.01
    )


def test_the_calibration_batch_holds_its_windows_frames_within_its_read_bound() -> None:
    def dataset_of(lat: int, lon: int, steps: int) -> tuple[WindowDataset, xr.DataArray]:
        times = np.datetime64("2000-01-01", "ns") + np.arange(steps + 2) * np.timedelta64(6, "h")
        array = xr.DataArray(
            np.zeros((steps + 2, 1, lat, lon), np.float32),
            dims=("time", "channel", "lat", "lon"),
            coords={"time": times, "channel": ["x"], "lat": np.linspace(50, 40, lat), "lon": np.arange(lon)},
        )
        return WindowDataset(array, target_steps=steps, use_history=True, in_memory_limit_bytes=0), array

    small, array = dataset_of(4, 8, 40)
    assert calibration_batch(16, dataset=small, array=array) == 16  # a small grid keeps the validation batch
    big, array = dataset_of(512, 512, 40)  # 1 MiB frames, 42 of them per window
    assert calibration_batch(16, dataset=big, array=array) == BATCH_BYTES // (42 * 2**20) == 12
    huge, array = dataset_of(4096, 1024, 40)  # 16 MiB frames: one window passes the bound alone
    assert calibration_batch(16, dataset=huge, array=array) == 1
