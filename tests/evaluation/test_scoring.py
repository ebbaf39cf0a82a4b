from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr

from fno_forecast.bundle import load_bundle
from fno_forecast.data.channels import open_channels
from fno_forecast.errors import ConfigError, ForecastError
from fno_forecast.evaluation.prior import ZeroTendency
from fno_forecast.evaluation.scoring import (
    evaluate_model,
    open_for_bundle,
    parse_leads,
    score_bundle,
    verifiable_inits,
)
from tests.fixtures.bundle import tiny_state_array

# Latitude-weighted RMSE (K) of the baselines on the NCEP validation period (shared data notes).
PERSISTENCE = {6: 2.41, 24: 2.01, 72: 2.95, 120: 3.17, 240: 3.48}
CLIMATOLOGY = {6: 2.56, 24: 2.56, 72: 2.58, 120: 2.61, 240: 2.67}
LINEAR = {6: 1.35, 24: 1.95, 72: 2.58, 120: 2.66, 240: 2.64}


def build_ncep_bundle(directory: Path, array: xr.DataArray, *, relaxation: float | None = None) -> Path:
    """An untrained small FNO on the NCEP grid whose climatology is fitted on the training period.

    With `relaxation`, the stepper has a damped-anomaly prior of that rate everywhere (and its network's
    output layer starts at zero, so the untrained model is exactly its prior).
    """

    from fno_forecast.bundle import save_bundle
    from fno_forecast.climatology import fit_climatology
    from fno_forecast.data.schema import ChannelInfo, DataSchema, GridInfo
    from fno_forecast.models.registry import FNOConfig, model_config_to_dict, resolve_defaults
    from fno_forecast.models.stepper import build_stepper

    torch.manual_seed(0)
    train = array.sel(time=slice("2013-01-01", "2014-06-30")).load()
    lat, lon = array["lat"].values, array["lon"].values
    grid = GridInfo.from_arrays(lat, lon)
    config = resolve_defaults(
        FNOConfig(
            hidden_channels=4,
            n_layers=1,
            n_modes_lat=4,
            n_modes_lon=4,
            lifting_channel_ratio=1.0,
            projection_channel_ratio=1.0,
        ),
        grid,
    )
    climatology = fit_climatology(train, annual=3, diurnal=2)
    values = train.values
    stepper = build_stepper(
        model_name="fno",
        model_config=config,
        grid_lat=lat,
        grid_lon=lon,
        step_hours=6.0,
        mean=values.mean(axis=(0, 2, 3)),
        std=values.std(axis=(0, 2, 3)),
        tendency_std=np.diff(values, axis=0).std(axis=(0, 2, 3)),
        use_history=False,
        climatology=None if relaxation is None else climatology,
        relaxation=None if relaxation is None else np.full((1, len(lat), len(lon)), relaxation),
    )
    schema = DataSchema(
        channels=(ChannelInfo(name="air", variable="air", units="degK"),), grid=grid, step_hours=6.0
    )
    metadata = {
        "model": {"name": "fno", "config": model_config_to_dict(config)},
        "schema": schema.to_dict(),
        "training": {"train_period": "2013-01-01/2014-06-30"},
    }
    return save_bundle(directory, stepper=stepper, metadata=metadata, climatology=climatology)


def test_parse_leads():
    assert parse_leads("24, 6,24") == (6.0, 24.0)
    with pytest.raises(ConfigError, match="--leads"):
        parse_leads("6,x")


def test_verifiable_inits_skip_gaps_and_the_end():
    hours = np.array([0, 6, 12, 18, 30, 36, 42, 48], dtype=float)  # 24 h missing
    inits, verify, previous = verifiable_inits(
        hours, in_period=np.ones(8, bool), steps=[1, 2], step_hours=6.0, use_history=True
    )
    # 0 has no previous step, 12 and 18 need 24, 30's previous is 24, 42 and 48 run off the end
    assert inits.tolist() == [1, 5]
    assert verify.tolist() == [[2, 3], [6, 7]]
    assert previous.tolist() == [0, 4]


def test_evaluate_tiny_bundle_matches_hand_computed_persistence(tiny_bundle):
    bundle = load_bundle(tiny_bundle)
    array = tiny_state_array(n_steps=60, start="2014-07-01", seed=5)
    result = evaluate_model(bundle, array, period="2014-07-02/2014-07-10", leads=(6, 24), batch_size=7)
    card = result.card
    # history model: 07-02T00 has its previous step; inits need +24 h inside the 60 steps (to 07-15T18)
    assert card.inits == 36 and result.init_times[0] == np.datetime64("2014-07-02T00")
    values = array.values.astype(np.float64)
    w = np.cos(np.deg2rad(array["lat"].values))
    w = w / w.mean()
    i = np.arange(4, 40)
    err = values[i + 4] - values[i]
    expected = np.sqrt((err**2 * w[None, None, :, None]).mean(axis=(2, 3)).mean(axis=0))
    rows = {(r.variable, r.metric, r.lead_hours): r for r in card.rows}
    assert rows[("air", "rmse", 24.0)].persistence == pytest.approx(expected[0], rel=1e-5)
    assert rows[("z500", "rmse", 24.0)].persistence == pytest.approx(expected[1], rel=1e-5)
    assert rows[("air", "acc", 6.0)].climatology is None
    assert np.isfinite(rows[("air", "rmse", 6.0)].model)
    assert result.map_fields is not None and result.map_fields.lead_hours == 24.0
    # the same scores whatever the batch size
    again = evaluate_model(bundle, array, period="2014-07-02/2014-07-10", leads=(6, 24), batch_size=64)
    assert [r.model for r in again.card.rows] == pytest.approx([r.model for r in card.rows], rel=1e-4)
    with pytest.raises(ForecastError, match="no init time"):
        evaluate_model(bundle, array, period="2014-07-15/2014-07-20", leads=(24,))


def test_ncep_validation_baselines_match_the_shared_notes(ncep_nc, tmp_path):
    array = open_channels([ncep_nc]).array
    bundle = load_bundle(build_ncep_bundle(tmp_path / "model", array))
    bundle.stepper.network = ZeroTendency(1)  # fast, and the model must then score as persistence
    result = evaluate_model(bundle, open_for_bundle(bundle, [ncep_nc]), period="2014-07-01/2014-09-30")
    assert result.card.inits == 368
    rmse = {r.lead_hours: r for r in result.card.rows if r.metric == "rmse"}
    for lead, value in PERSISTENCE.items():
        assert rmse[lead].persistence == pytest.approx(value, abs=0.01)
        assert rmse[lead].model == pytest.approx(rmse[lead].persistence, rel=1e-5)
    for lead, value in CLIMATOLOGY.items():
        assert rmse[lead].climatology == pytest.approx(value, abs=0.015)
    # the linear baseline on 150 principal components, fitted on the training period, is the notes' one
    linear = result.card.protocol["linear_ar"]
    assert linear["components"] == 150 and linear["fitted_on"] == "2013-01-01T00:00/2014-06-30T18:00"
    for lead, value in LINEAR.items():
        assert rmse[lead].others["linear_ar"] == pytest.approx(value, abs=0.04)


def test_ncep_prior_of_an_untrained_relaxation_model_is_the_model(ncep_nc, tmp_path):
    array = open_channels([ncep_nc]).array
    bundle = load_bundle(build_ncep_bundle(tmp_path / "model", array, relaxation=0.02))
    data = open_for_bundle(bundle, [ncep_nc])
    result = evaluate_model(bundle, data, period="2014-08-01/2014-08-20", leads=(6, 72), verify_inside=True)
    card = result.card
    assert card.protocol["own_prior"] == "prior" and card.protocol["inits_per_lead"] == {"6": 79, "72": 68}
    for row in card.rows:
        if row.metric == "rmse":
            assert row.others["prior"] == pytest.approx(row.model, rel=1e-5)
            assert row.versus["prior"]["significant"] is False
            # damped anomaly persistence beats persistence at 72 h
            assert row.lead_hours == 6 or row.others["prior"] < row.persistence


def test_score_bundle_stores_the_skill_card(tiny_bundle, tmp_path):
    import shutil

    model = shutil.copytree(tiny_bundle, tmp_path / "model")
    data = tmp_path / "verify.nc"
    array = tiny_state_array(n_steps=24, start="2014-07-01", seed=2)
    z = array.sel(channel="z500").drop_vars("channel").expand_dims(level=[500.0], axis=1)
    xr.Dataset({"air": array.sel(channel="air").drop_vars("channel"), "z": z}).to_netcdf(data)
    skill = score_bundle(model, [data], period="2014-07-02/2014-07-03", leads=(6, 12), write=True)
    assert skill["inits"] == 8 and len(skill["scores"]) == 2 * 3 * 2
    assert json.loads((model / "model.json").read_text())["skill_card"] == skill


def test_verify_inside_never_reads_past_the_period(tiny_bundle):
    bundle = load_bundle(tiny_bundle)
    array = tiny_state_array(n_steps=60, start="2014-07-01", seed=5)
    spoiled = array.copy()
    spoiled[40:] = np.nan  # everything after 2014-07-10T18
    period = "2014-07-02/2014-07-10"
    clean = evaluate_model(bundle, array, period=period, leads=(6, 24), verify_inside=True).card
    card = evaluate_model(bundle, spoiled, period=period, leads=(6, 24), verify_inside=True).card
    assert card.protocol["inits_per_lead"] == {"6": 35, "24": 32} and card.inits == 35
    assert [r.to_dict() for r in card.rows] == [r.to_dict() for r in clean.rows]
    values = array.values.astype(np.float64)
    w = np.cos(np.deg2rad(array["lat"].values))
    w = w / w.mean()
    i = np.arange(4, 36)  # 07-02T00 .. 07-09T18: their 24 h verifies by 07-10T18
    err = values[i + 4, 0] - values[i, 0]
    expected = np.sqrt((err**2 * w[None, :, None]).mean(axis=(1, 2)).mean())
    row = next(r for r in card.rows if (r.variable, r.metric, r.lead_hours) == ("air", "rmse", 24.0))
    assert row.persistence == pytest.approx(expected, rel=1e-5)


def test_init_stride_scores_every_nth_init(tiny_bundle):
    bundle = load_bundle(tiny_bundle)
    array = tiny_state_array(n_steps=60, start="2014-07-01", seed=5)
    period = "2014-07-02/2014-07-10"
    full = evaluate_model(bundle, array, period=period, leads=(6, 24), verify_inside=True, bootstrap=None)
    thin = evaluate_model(
        bundle, array, period=period, leads=(6, 24), verify_inside=True, bootstrap=None, init_stride=3
    )
    assert list(thin.init_times) == list(full.init_times[::3])
    assert thin.card.protocol["init_stride"] == 3 and full.card.protocol["init_stride"] == 1
    assert thin.card.protocol["inits_per_lead"] == {"6": 12, "24": 11}
    assert thin.card.protocol["init_selection"].startswith("one init in 3")
    values = array.values.astype(np.float64)
    w = np.cos(np.deg2rad(array["lat"].values))
    w = w / w.mean()
    i = np.arange(4, 36, 3)  # every third init whose 24 h verifies by 07-10T18
    err = values[i + 4, 0] - values[i, 0]
    expected = np.sqrt((err**2 * w[None, :, None]).mean(axis=(1, 2)).mean())
    row = next(r for r in thin.card.rows if (r.variable, r.metric, r.lead_hours) == ("air", "rmse", 24.0))
    assert row.persistence == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ConfigError, match="init_stride"):
        evaluate_model(bundle, array, period=period, leads=(6,), init_stride=0)


def test_history_days_limit_the_recent_anomaly_window(tiny_bundle, tmp_path):
    from tests.fixtures.bundle import copy_with_recent_anomaly

    bundle = load_bundle(copy_with_recent_anomaly(tiny_bundle, tmp_path / "model", coefficient=0.5))
    array = tiny_state_array(n_steps=80, start="2014-07-01", seed=5)
    period = "2014-07-10/2014-07-12"
    full = evaluate_model(bundle, array, period=period, leads=(6,), bootstrap=None).card
    short = evaluate_model(bundle, array, period=period, leads=(6,), history_days=2, bootstrap=None).card
    # the 3-day window has the lower held-out error; 2 days of history only cover the 1-day window
    assert full.protocol["scored_with"]["recent_anomaly_days_used"] == {"3": 12}
    assert short.protocol["scored_with"]["recent_anomaly_days_used"] == {"1": 12}
    assert short.protocol["scored_with"]["history_days"] == 2
    assert full.protocol["served"]["windows_best_first_days"] == [3.0, 1.0]
    rmse = [r for r in full.rows if r.metric == "rmse"]
    assert full.protocol["own_prior"] is None  # no relaxation prior in the tiny bundle
    assert rmse[0].model != next(r for r in short.rows if r.metric == "rmse").model
