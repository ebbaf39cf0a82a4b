"""Many channels from pressure-level data: loss weights per variable and level, and configs/era5-wb2.toml
trained end to end on a small store with WeatherBench 2's 1.5-degree ERA5 schema."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

from fno_forecast.bundle import load_bundle
from fno_forecast.cli import main
from fno_forecast.data.channels import open_channels
from fno_forecast.data.schema import ChannelInfo
from fno_forecast.errors import ConfigError
from fno_forecast.training.config import load_config
from fno_forecast.training.loss import channel_loss_weights
from tests.training.helpers import TINY_OVERRIDES

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "configs" / "era5-wb2.toml"
SURFACE = {
    "10m_u_component_of_wind": (0.0, 5.0, "m s-1"),
    "10m_v_component_of_wind": (0.0, 4.0, "m s-1"),
    "2m_temperature": (280.0, 15.0, "K"),
    "mean_sea_level_pressure": (101_325.0, 1_000.0, "Pa"),
    "total_column_water_vapour": (20.0, 10.0, "kg m-2"),
    "surface_pressure": (98_000.0, 4_000.0, "Pa"),
}
UPPER = {
    "geopotential": (None, 500.0, "m2 s-2"),
    "temperature": (None, 8.0, "K"),
    "u_component_of_wind": (5.0, 10.0, "m s-1"),
    "v_component_of_wind": (0.0, 8.0, "m s-1"),
    "specific_humidity": (None, None, "kg kg-1"),
}
LEVELS = [50, 250, 500, 700, 850, 1000]


def upper_mean(name: str, level: float, base: float | None) -> float:
    """Rough ERA5 means: geopotential of a standard atmosphere, temperature, humidity by level."""
    height = 44_330.0 * (1.0 - (level / 1013.25) ** 0.1903)
    return {
        "geopotential": 9.80665 * height,
        "temperature": 288.0 - 0.0065 * min(height, 11_000.0),
        "specific_humidity": 0.012 * (level / 1000.0) ** 3,
    }.get(name, base or 0.0)


def write_wb2_like(path: Path, *, start: str = "2018-12-28", steps: int = 24) -> Path:
    """A store laid out like `1959-2023_01_10-6h-240x121_equiangular_with_poles_conservative.zarr`: dims
    (time, level, longitude, latitude), latitude -90..90 ascending with both poles, longitude 0..358.5,
    13 levels in hPa (6 here), a static field without time, float32, one time step per chunk."""
    rng = np.random.default_rng(0)
    time = pd.date_range(start, periods=steps, freq="6h")
    lat = np.linspace(-90.0, 90.0, 121)
    lon = np.arange(240) * 1.5
    hours = np.arange(steps)[:, None, None] * 6.0
    wave = np.cos(np.deg2rad(lat))[None, None, :] * np.sin(np.deg2rad(lon)[None, :, None] - hours / 48.0)

    def field(mean: float, scale: float, extra: tuple[int, ...] = ()) -> np.ndarray:
        noise = rng.standard_normal((steps, *extra, lon.size, lat.size))
        shape = (steps, *([1] * len(extra)), lon.size, lat.size)
        return (mean + scale * (wave.reshape(shape) + 0.1 * noise)).astype(np.float32)

    data = {}
    for name, (mean, scale, units) in SURFACE.items():
        data[name] = (("time", "longitude", "latitude"), field(mean, scale), {"units": units})
    for name, (base, scale, units) in UPPER.items():
        means = np.array([upper_mean(name, lv, base) for lv in LEVELS], dtype=np.float64)
        scales = means * 0.2 if scale is None else np.full(len(LEVELS), scale)
        values = field(0.0, 1.0, (len(LEVELS),)) * scales[None, :, None, None] + means[None, :, None, None]
        data[name] = (("time", "level", "longitude", "latitude"), values.astype(np.float32), {"units": units})
    data["land_sea_mask"] = (("longitude", "latitude"), (rng.random((240, 121)) > 0.7).astype(np.float32), {})
    dataset = xr.Dataset(
        data,
        coords={"time": time, "level": np.array(LEVELS, dtype=np.int64), "latitude": lat, "longitude": lon},
    )
    dataset.chunk({"time": 1}).to_zarr(path, zarr_format=2, consolidated=True)
    return path


def channel(name: str, level: float | None = None) -> ChannelInfo:
    return ChannelInfo(name=name if level is None else f"{name}{level:g}", variable=name, level=level)


def test_pressure_weights_are_level_over_mean_level_times_the_variable_factor() -> None:
    channels = [
        channel("t2m"),
        channel("msl"),
        channel("z", 50),
        channel("z", 500),
        channel("t", 50),
        channel("t", 1000),
    ]
    weights = channel_loss_weights(
        channels, variable_weights={"msl": 0.1, "t": 2.0}, level_weighting="pressure"
    ).flatten()
    # distinct levels 50, 500, 1000: mean 516.67; raw weights before the mean-1 normalisation
    raw = np.array([1.0, 0.1, 50 / 516.6667, 500 / 516.6667, 2 * 50 / 516.6667, 2 * 1000 / 516.6667])
    np.testing.assert_allclose(weights.numpy(), raw / raw.mean(), rtol=1e-5)
    assert float(weights.mean()) == pytest.approx(1.0)
    flat = channel_loss_weights(channels, channel_weights=(1, 1, 1, 1, 1, 3)).flatten()
    np.testing.assert_allclose(flat.numpy(), np.array([1, 1, 1, 1, 1, 3]) / (8 / 6), rtol=1e-6)


def test_loss_weight_errors_name_the_key() -> None:
    with pytest.raises(ConfigError, match="variable_weights: no channel of variable"):
        channel_loss_weights([channel("t2m")], variable_weights={"t": 1.0})
    with pytest.raises(ConfigError, match="variable_weights: expected VARIABLE=FACTOR"):
        load_config(overrides={"variable_weights": ["t2m"]})
    with pytest.raises(ConfigError, match="variable_weights: expected VARIABLE=FACTOR"):
        load_config(overrides={"variable_weights": ["t2m=-1"]})
    with pytest.raises(ConfigError, match="level_weighting"):
        load_config(overrides={"level_weighting": "mass"})
    assert load_config(overrides={"variable_weights": ["t2m=0.5"]}).variable_weight_map() == {"t2m": 0.5}


@pytest.fixture(scope="module")
def wb2_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_wb2_like(tmp_path_factory.mktemp("wb2") / "era5_240x121.zarr")


def test_the_config_selects_thirty_channels_on_the_global_grid(wb2_store: Path) -> None:
    config = load_config(CONFIG)
    channels = open_channels(wb2_store, variables=list(config.variables), levels=list(config.levels))
    names = channels.schema.channel_names
    assert len(names) == 30 and names[:5] == (
        "10m_u_component_of_wind",
        "10m_v_component_of_wind",
        "2m_temperature",
        "mean_sea_level_pressure",
        "total_column_water_vapour",
    )
    assert names[5:10] == tuple(f"geopotential{lv}" for lv in (50, 250, 500, 850, 1000))
    grid = channels.schema.grid
    assert (grid.nlat, grid.nlon) == (121, 240) and grid.is_global
    assert grid.lat[0] == 90.0 and grid.lat[-1] == -90.0
    # north first, as the canonical array is: the store's last latitude row is the first here
    with xr.open_zarr(wb2_store) as ds:
        north = ds["2m_temperature"].isel(time=3, latitude=-1).values
    np.testing.assert_array_equal(channels.array.isel(time=3, channel=2, lat=0).values, north)
    weights = channel_loss_weights(
        channels.schema.channels,
        variable_weights=config.variable_weight_map(),
        level_weighting=config.level_weighting,
    ).flatten()
    # z1000 weighs 1000/50 = 20 times z50, and 2 m temperature 10 times the 10 m wind
    assert float(weights[9] / weights[5]) == pytest.approx(20.0)
    assert float(weights[2] / weights[0]) == pytest.approx(10.0)


def test_era5_wb2_config_trains_end_to_end(wb2_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["train", "--config", str(CONFIG), "--data", str(wb2_store), "--out", str(out), "--quiet"]
    for item in [*TINY_OVERRIDES, "recent_anomaly=false", "lead_calibration=false", "val_init_stride=1"]:
        args += ["--set", item]
    assert main(args) == 0
    bundle = load_bundle(out / "model")
    assert bundle.metadata["model"]["name"] == "sfno"
    assert len(bundle.schema.channels) == 30
    assert bundle.metadata["training"]["train_period"] == "2015-01-01/2018-12-31"
    # per-channel statistics: each channel's own mean, across six orders of magnitude
    mean = bundle.stepper.mean.flatten().numpy()
    names = bundle.schema.channel_names
    assert mean[names.index("geopotential50")] == pytest.approx(
        upper_mean("geopotential", 50, None), rel=0.01
    )
    assert mean[names.index("specific_humidity1000")] == pytest.approx(0.012, rel=0.01)
    assert mean[names.index("mean_sea_level_pressure")] == pytest.approx(101_325.0, rel=1e-3)
    val = bundle.metadata["training"]["val_rmse"]
    assert set(val) == {"6", "12"} and len(val["6"]) == 30
    assert all(np.isfinite(v) for lead in val.values() for v in lead.values())
    assert torch.isfinite(bundle.stepper.std).all()
