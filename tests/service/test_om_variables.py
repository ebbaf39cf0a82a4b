"""The channel -> Open-Meteo mapping: names from CF/GRIB/NCEP variables and levels, units, derived wind."""

from __future__ import annotations

import numpy as np
import pytest

from fno_forecast.data.schema import ChannelInfo, DataSchema, GridInfo
from service.om_names import OmName, parse_daily, parse_hourly
from service.om_variables import Units, converter, describe_mapping, quantity

GRID = GridInfo(lat=(10.0, 0.0), lon=(0.0, 10.0))


def schema(*channels: ChannelInfo, step_hours: float = 6.0) -> DataSchema:
    return DataSchema(channels=channels, grid=GRID, step_hours=step_hours)


ERA5 = schema(
    ChannelInfo("t850", "t", 850.0, "K"),
    ChannelInfo("z500", "z", 500.0, "m**2 s**-2"),
    ChannelInfo("u850", "u", 850.0, "m s**-1"),
    ChannelInfo("v850", "v", 850.0, "m s**-1"),
    ChannelInfo("u10", "10u", None, "m s**-1"),
    ChannelInfo("v10", "10v", None, "m s**-1"),
    ChannelInfo("msl", "msl", None, "Pa"),
    ChannelInfo("t2m", "2t", None, "K"),
    ChannelInfo("tp", "tp", None, "m"),
    ChannelInfo("q", "q", 700.0, "kg kg**-1"),
)
#             t850    z500      u850  v850  u10   v10   msl       t2m     tp     q
ROW = np.array([270.0, 55000.0, 3.0, 4.0, -5.0, 0.0, 101325.0, 288.15, 0.006, 0.001])


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("temperature_850hPa", -3.15),
        ("geopotential_height_500hPa", 55000.0 / 9.80665),
        ("wind_speed_850hPa", 5.0),
        ("wind_speed_10m", 5.0),
        ("wind_direction_10m", 90.0),  # u = -5: the wind blows toward the west, from the east
        ("pressure_msl", 1013.25),
        ("temperature_2m", 15.0),
        ("precipitation", 1.0),  # 6 mm in a 6 h step: 1 mm in each hour
        ("relative_humidity_2m", np.nan),  # not in the model
    ],
)
def test_era5_like_channels_answer_open_meteo_names(name: str, expected: float) -> None:
    parsed = parse_hourly(name)
    assert parsed is not None
    value = quantity(ERA5, parsed).base_values(ROW)
    np.testing.assert_allclose(value, expected, rtol=1e-9, equal_nan=True)


def test_wind_directions_follow_the_meteorological_convention() -> None:
    winds = schema(ChannelInfo("u10", "u10", None, "m/s"), ChannelInfo("v10", "v10", None, "m/s"))
    direction = quantity(winds, OmName("wind_direction", height_m=10))
    from_west, from_north = np.array([2.0, 0.0]), np.array([0.0, -2.0])
    assert direction.base_values(from_west) == pytest.approx(270.0)
    assert direction.base_values(from_north) == pytest.approx(0.0)


def test_ncep_lowest_level_air_is_temperature_2m_and_says_so() -> None:
    ncep = schema(ChannelInfo("air", "air", None, "degK", "4xDaily Air temperature at sigma level 995"))
    mapping = describe_mapping(ncep)
    assert list(mapping) == ["temperature_2m"]
    assert "sigma level 995" in mapping["temperature_2m"] and "lowest" in mapping["temperature_2m"]
    assert quantity(ncep, OmName("temperature", height_m=2)).base_values(np.array([273.15])) == pytest.approx(
        0.0
    )
    unknown_units = schema(ChannelInfo("air", "air", None, "furlongs"))
    assert describe_mapping(unknown_units) == {}  # not guessed


def test_units_and_names() -> None:
    fahrenheit = Units(temperature="fahrenheit", wind_speed="kn", precipitation="inch")
    label, convert = converter(OmName("temperature", height_m=2), fahrenheit)
    assert (label, convert(np.array(100.0))) == ("°F", 212.0)
    label, convert = converter(OmName("wind_speed", height_m=10), fahrenheit)
    assert label == "kn" and convert(np.array(1852.0 / 3600.0)) == pytest.approx(1.0)
    label, convert = converter(OmName("precipitation"), fahrenheit)
    assert label == "inch" and convert(np.array(25.4)) == pytest.approx(1.0)
    assert converter(OmName("wind_speed", height_m=10), Units())[0] == "km/h"
    assert parse_hourly("windspeed_10m") == OmName("wind_speed", height_m=10)
    assert parse_hourly("temperature_925hPa") == OmName("temperature", level_hpa=925)
    assert parse_hourly("temperature_927hPa") is None and parse_hourly("air") is None
    assert parse_daily("winddirection_10m_dominant").aggregation == "dominant"
    assert parse_daily("temperature_2m_dominant") is None and parse_daily("weathercode").aggregation is None
