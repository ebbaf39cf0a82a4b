"""Defaults derived from the data: climatology terms, validation leads, the model, and explicit keys winning."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from fno_forecast.data.schema import GridInfo
from fno_forecast.errors import ConfigError
from fno_forecast.training.config import load_config_and_keys
from fno_forecast.training.defaults import climatology_terms, data_facts, derive_defaults

REPO = Path(__file__).resolve().parents[2]
REGIONAL = GridInfo(tuple(np.arange(47.5, 39.9, -0.5)), tuple(np.arange(0.0, 12.0, 0.5)))
GLOBAL_POLES = GridInfo(tuple(np.arange(90.0, -90.1, -10.0)), tuple(np.arange(0.0, 360.0, 10.0)))


def _facts(start: str, n: int, step: str, train: str, val: str, grid: GridInfo = REGIONAL, channels: int = 1):
    unit = {"h": np.timedelta64(1, "h"), "6h": np.timedelta64(6, "h"), "D": np.timedelta64(1, "D")}[step]
    times = np.datetime64(start, "ns") + np.arange(n) * unit
    return data_facts(times, train_period=train, val_period=val, grid=grid, n_channels=channels)


def _monthly_facts(years: int, train: str, val: str):
    times = np.arange(np.datetime64("1981-01", "M"), np.datetime64(f"{1981 + years}-01", "M")).astype(
        "datetime64[ns]"
    )
    return data_facts(times, train_period=train, val_period=val, grid=GLOBAL_POLES, n_channels=2)


HOURLY = ("2021-06-01", 28 * 24, "h", "2021-06-01/2021-06-21", "2021-06-22/2021-06-24")


def test_climatology_terms_follow_span_and_step() -> None:
    assert climatology_terms(_facts(*HOURLY))[:2] == (0, 4)  # 3 weeks hourly: mean per hour of day
    ncep_like = _facts("2013-01-01", 4 * 730, "6h", "2013-01-01/2014-06-30", "2014-07-01/2014-09-30")
    assert climatology_terms(ncep_like)[:2] == (1, 2)  # 18 months: one annual harmonic
    calendar_year = _facts("2013-01-01", 4 * 730, "6h", "2013-01-01/2013-12-31", "2014-01-01/2014-03-31")
    assert climatology_terms(calendar_year)[:2] == (1, 2)  # 365 days cover the annual cycle
    short = _facts("2013-01-01", 4 * 730, "6h", "2013-01-01/2013-12-30", "2014-01-01/2014-03-31")
    assert climatology_terms(short)[:2] == (0, 2)
    daily = _facts("2015-01-01", 1461, "D", "2015-01-01/2017-12-31", "2018-01-01/2018-06-30")
    assert climatology_terms(daily)[:2] == (3, 0)  # 3 years: 3 annual, daily step: no diurnal
    monthly = _monthly_facts(30, "1981-01-01/2004-12-31", "2005-01-01/2007-12-31")
    annual, diurnal, why, _ = climatology_terms(monthly)
    assert (annual, diurnal) == (3, 0) and "24.0 years" in why
    assert "training mean per hour of day" in climatology_terms(_facts(*HOURLY))[3]


def test_validation_leads_fit_a_three_day_period() -> None:
    config, keys = load_config_and_keys(None, overrides={"train_period": HOURLY[3], "val_period": HOURLY[4]})
    resolved, choices = derive_defaults(config, explicit=keys, facts=_facts(*HOURLY))
    assert resolved.val_leads_hours == (6.0, 24.0)
    why = {c.key: c.why for c in choices}["val_leads_hours"]
    assert "72, 120, 240 h left out" in why and "at most 71 h" in why
    # an explicit lead that cannot fit names the longest that does
    config, keys = load_config_and_keys(None, overrides={"val_leads_hours": [6, 240]})
    with pytest.raises(ConfigError, match=r"240 h .* the longest lead that fits is 71 h"):
        derive_defaults(config, explicit=keys, facts=_facts(*HOURLY))


def test_monthly_leads_are_months_and_the_global_grid_gets_sfno() -> None:
    config, keys = load_config_and_keys(None)
    facts = _monthly_facts(30, "1981-01-01/2004-12-31", "2005-01-01/2007-12-31")
    resolved, _ = derive_defaults(config, explicit=keys, facts=facts)
    assert resolved.model == "sfno"
    steps = [round(h / facts.step_hours) for h in resolved.val_leads_hours]
    assert steps == [1, 3, 6]
    regional, _ = derive_defaults(config, explicit=keys, facts=_facts(*HOURLY))
    assert regional.model == "fno" and regional.hidden_channels == 32


def test_an_explicit_annual_harmonic_on_three_weeks_is_an_error() -> None:
    config, keys = load_config_and_keys(None, overrides={"climatology_annual": 3})
    with pytest.raises(ConfigError, match="climatology_annual = 3: .* 21.0 days"):
        derive_defaults(config, explicit=keys, facts=_facts(*HOURLY))


def test_the_bundled_ncep_config_is_unchanged_by_derivation() -> None:
    config, keys = load_config_and_keys(REPO / "configs" / "ncep-air.toml")
    grid = GridInfo(tuple(np.arange(75.0, 14.9, -2.5)), tuple(np.arange(200.0, 330.1, 2.5)))
    facts = _facts("2013-01-01", 4 * 730, "6h", config.train_period, config.val_period, grid=grid)
    resolved, choices = derive_defaults(config, explicit=keys, facts=facts)
    assert resolved == config
    assert [c.key for c in choices] == []


def test_annual_harmonics_are_dropped_on_data_without_a_seasonal_cycle() -> None:
    import xarray as xr

    from data.make_synthetic import AnomalySpec, advected_anomalies, make_daily
    from fno_forecast.training.data_setup import drop_unexplained_terms

    def canonical(values: np.ndarray, times: np.ndarray) -> xr.DataArray:
        return xr.DataArray(
            values[:, None].astype(np.float32),
            dims=("time", "channel", "lat", "lon"),
            coords={"time": times, "channel": ["x"], "lat": np.arange(4.0), "lon": np.arange(6.0)},
        )

    times = np.datetime64("2015-01-01", "ns") + np.arange(3 * 365) * np.timedelta64(1, "D")
    spec = AnomalySpec(std=3.0, efold_hours=96.0, cells_per_hour=(0.0, 0.04), scale_cells=2.0)
    flat = canonical(
        advected_anomalies(
            n_time=times.size, step_hours=24.0, shape=(4, 6), spec=spec, rng=np.random.default_rng(0)
        ),
        times,
    )
    config, keys = load_config_and_keys(None)
    config = dataclasses.replace(config, climatology_annual=3, climatology_diurnal=0)
    resolved, choices = drop_unexplained_terms(config, flat, explicit=keys)
    assert resolved.climatology_annual == 0 and "no annual cycle in the data" in choices[0].why
    seasonal = canonical(make_daily(years=3, nlat=4, nlon=6)["t2m"].values[: times.size], times)
    resolved, choices = drop_unexplained_terms(config, seasonal, explicit=keys)
    # a cosine annual cycle under weather and a slow mode: one harmonic holds out best over the 3 years
    assert resolved.climatology_annual == 1 and "each year left out" in choices[0].why
    # an annual cycle with a sharp winter (real second and third harmonics) keeps all three
    phase = 2 * np.pi * np.arange(times.size) / 365.2425
    sharp = 6.0 * (np.cos(phase) + 0.5 * np.cos(2 * phase) + 0.3 * np.cos(3 * phase))
    shaped = canonical(flat.values[:, 0] + sharp[:, None, None], times)
    resolved, choices = drop_unexplained_terms(config, shaped, explicit=keys)
    assert resolved.climatology_annual == 3, choices[0].why
    # an explicit annual term is kept whatever it explains
    resolved, _ = drop_unexplained_terms(config, flat, explicit=keys | {"climatology_annual"})
    assert resolved.climatology_annual == 3


def test_annual_count_is_not_cross_validated_under_two_years() -> None:
    import xarray as xr

    from fno_forecast.climatology import annual_terms_by_year

    times = np.datetime64("2013-01-01", "ns") + np.arange(4 * 547) * np.timedelta64(6, "h")
    values = np.random.default_rng(0).normal(size=(times.size, 1, 2, 3)).astype(np.float32)
    array = xr.DataArray(values, dims=("time", "channel", "lat", "lon"), coords={"time": times})
    assert annual_terms_by_year(array, max_annual=3, diurnal=2) == (3, ())
    two_years = xr.DataArray(
        np.random.default_rng(1).normal(size=(731, 1, 8, 8)).astype(np.float32),
        dims=("time", "channel", "lat", "lon"),
        coords={"time": np.datetime64("2013-01-01", "ns") + np.arange(731) * np.timedelta64(1, "D")},
    )
    best, errors = annual_terms_by_year(two_years, max_annual=3, diurnal=0)
    # noise: every extra harmonic fits the other year's noise, so the held-out error grows with the count
    assert best == 1 and len(errors) == 3 and errors[0] < errors[1] < errors[2]


def test_explicit_annual_terms_need_a_year() -> None:
    overrides = {
        "climatology_annual": 3,
        "train_period": "2013-01-01/2013-12-31",
        "val_period": "2014-01-01/2014-03-31",
    }
    config, keys = load_config_and_keys(None, overrides=overrides)
    year = _facts("2013-01-01", 4 * 455, "6h", overrides["train_period"], overrides["val_period"])
    resolved, _ = derive_defaults(config, explicit=keys, facts=year)
    assert resolved.climatology_annual == 3  # a calendar year supports the explicit terms
    overrides["train_period"] = "2013-01-01/2013-06-30"
    config, keys = load_config_and_keys(None, overrides=overrides)
    half = _facts("2013-01-01", 4 * 455, "6h", overrides["train_period"], overrides["val_period"])
    with pytest.raises(
        ConfigError, match=r"climatology_annual = 3: the training period 2013-01-01/2013-06-30"
    ):
        derive_defaults(config, explicit=keys, facts=half)
