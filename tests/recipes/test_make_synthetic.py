"""data/make_synthetic.py: deterministic, CF-described sets the data layer reads with the intended step."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import xarray as xr

from data.make_synthetic import HOURLY_ANOMALIES, advected_anomalies, make_daily, make_hourly, make_monthly
from fno_forecast.data.channels import open_channels

REPO = Path(__file__).resolve().parents[2]


def test_the_cli_writes_cf_netcdf_that_opens_as_hourly_channels(tmp_path: Path) -> None:
    out = tmp_path / "hourly.nc"
    done = subprocess.run(
        [sys.executable, str(REPO / "data" / "make_synthetic.py"), "hourly", "--days", "3", "--nlat", "6",
         "--nlon", "8", "--out", str(out)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    channels = open_channels(str(out))
    assert channels.schema.step_hours == 1.0 and channels.schema.channel_names == ("t2m",)
    assert channels.array.sizes == {"time": 72, "channel": 1, "lat": 6, "lon": 8}
    with xr.open_dataset(out) as ds:
        assert ds["lat"].attrs["standard_name"] == "latitude" and ds["t2m"].attrs["units"] == "K"


def test_same_seed_same_data_other_seed_other_anomalies() -> None:
    a, b = make_hourly(days=2, nlat=4, nlon=6, seed=1), make_hourly(days=2, nlat=4, nlon=6, seed=1)
    c = make_hourly(days=2, nlat=4, nlon=6, seed=2)
    assert np.array_equal(a["t2m"].values, b["t2m"].values)
    assert not np.allclose(a["t2m"].values, c["t2m"].values)


def test_hourly_has_a_diurnal_cycle_and_persistent_anomalies() -> None:
    t2m = make_hourly(days=14, nlat=8, nlon=12)["t2m"].values.astype(np.float64)
    by_hour = t2m.reshape(14, 24, 8, 12).mean(axis=(0, 2, 3))
    assert by_hour.max() - by_hour.min() > 6.0  # the diurnal range
    spec = HOURLY_ANOMALIES
    anomaly = advected_anomalies(
        n_time=24 * 60, step_hours=1.0, shape=(8, 12), spec=spec, rng=np.random.default_rng(0)
    )
    lag = [np.corrcoef(anomaly[:-n].ravel(), anomaly[n:].ravel())[0, 1] for n in (1, 24)]
    assert lag[0] > 0.95 and 0.3 < lag[1] < 0.9  # predictable a day ahead, not frozen
    assert 2.0 < anomaly.std() < 3.0


def test_daily_and_monthly_steps_and_the_global_grid_with_poles() -> None:
    daily = make_daily(years=1, nlat=4, nlon=6)
    assert np.all(np.diff(daily["time"].values) == np.timedelta64(1, "D"))
    monthly = make_monthly(years=2, res=30.0)
    assert monthly["lat"].values[0] == 90.0 and monthly["lat"].values[-1] == -90.0
    assert len(monthly["lon"]) * 30 == 360 and set(monthly.data_vars) == {"tas", "psl"}
    assert np.isfinite(monthly["tas"].values).all()
    # the two hemispheres' seasons are opposite
    tas = monthly["tas"].values
    north, south = tas[:, 1].mean(axis=-1), tas[:, -2].mean(axis=-1)
    assert np.corrcoef(north, south)[0, 1] < -0.5


def test_monthly_data_opens_at_its_own_step_as_a_monthly_bundle_asks(tmp_path: Path) -> None:
    from data.make_synthetic import write_atomic
    from fno_forecast.data.timeaxis import HOURS_PER_MONTH

    path = write_atomic(make_monthly(years=2, res=30.0), tmp_path / "monthly.nc")
    channels = open_channels(str(path), step_hours=HOURS_PER_MONTH)
    assert channels.array.sizes["time"] == 24 and channels.time.step_months == 1


def test_monthly_tropics_carry_a_slow_mode_that_is_predictable_six_months_ahead() -> None:
    """Real monthly means keep skill beyond a season in the tropics (ENSO); the set must too, or no
    forecast could beat the climatology at 6 months. Mid-latitude anomalies forget within a season."""

    def lag6(slow_mode: bool, band: tuple[float, float]) -> float:
        monthly = make_monthly(years=30, res=10.0, slow_mode=slow_mode)
        tas = monthly["tas"].values.astype(np.float64)
        anomaly = tas - np.stack([tas[m::12].mean(axis=0) for m in range(12)])[np.arange(len(tas)) % 12]
        lat = np.abs(monthly["lat"].values)
        a = anomaly[:, (lat >= band[0]) & (lat <= band[1]), :]
        return float((a[:-6] * a[6:]).mean() / np.sqrt((a[:-6] ** 2).mean() * (a[6:] ** 2).mean()))

    assert lag6(True, (0.0, 10.0)) > 0.35
    assert lag6(True, (40.0, 60.0)) < 0.15
    assert lag6(False, (0.0, 10.0)) < 0.2  # the set before the mode forgets within a season everywhere


def test_daily_anomalies_stay_correlated_ten_days_on() -> None:
    """Real daily-mean temperatures still correlate at 0.1-0.3 with themselves ten days on (persistent
    regimes, soil moisture); the set's slow mode gives that, the set before it (`slow_mode=False`) not,
    and there no forecast could beat the climatology at 10 days by more than a fraction of a percent."""

    def lag10(slow_mode: bool) -> float:
        daily = make_daily(years=4, nlat=16, nlon=24, slow_mode=slow_mode)
        t2m = daily["t2m"].values.astype(np.float64)
        day = daily["time"].dt.dayofyear.values
        harmonics = [np.ones(day.size)]
        for k in (1, 2, 3):
            harmonics += [np.cos(2 * np.pi * k * day / 365.25), np.sin(2 * np.pi * k * day / 365.25)]
        design = np.stack(harmonics, axis=1)
        flat = t2m.reshape(len(t2m), -1)
        anomaly = flat - design @ np.linalg.lstsq(design, flat, rcond=None)[0]
        return float((anomaly[:-10] * anomaly[10:]).mean() / (anomaly**2).mean())

    assert 0.08 < lag10(True) < 0.25  # 0.12
    assert lag10(False) < 0.03  # -0.06
