"""Open-Meteo's variable vocabulary: which hourly and daily names exist, and what each one means.

A name is parsed into an `OmName` (a quantity, at a height above ground or on a pressure level), which is
what the channel mapping (`service.om_variables`) matches against. Legacy spellings Open-Meteo still
accepts (`windspeed_10m`, `weathercode`, `relativehumidity_2m`...) parse to the same quantity and are
answered under the name the client sent. A name that is not Open-Meteo's and not a channel of the model is
a 400; a known name the model lacks is answered with nulls, as Open-Meteo answers for a model without it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Open-Meteo's pressure levels (hPa) for the forecast API.
PRESSURE_LEVELS = (
    1000,
    975,
    950,
    925,
    900,
    850,
    800,
    700,
    600,
    500,
    400,
    300,
    250,
    200,
    150,
    100,
    70,
    50,
    30,
)
# Quantities Open-Meteo offers on every pressure level, as `<quantity>_<level>hPa`.
LEVEL_QUANTITIES = (
    "temperature",
    "relative_humidity",
    "dew_point",
    "cloud_cover",
    "wind_speed",
    "wind_direction",
    "geopotential_height",
    "vertical_velocity",
)
# Quantities at heights above ground, as `<quantity>_<height>m`, with the heights Open-Meteo offers.
HEIGHT_QUANTITIES = {
    "temperature": (2, 80, 120, 180),
    "relative_humidity": (2,),
    "dew_point": (2,),
    "wet_bulb_temperature": (2,),
    "wind_speed": (10, 80, 100, 120, 180),
    "wind_direction": (10, 80, 100, 120, 180),
    "wind_gusts": (10,),
    "wind_u_component": (10, 80, 100, 120, 180),
    "wind_v_component": (10, 80, 100, 120, 180),
}
# Hourly variables without a height or level suffix.
PLAIN_HOURLY = frozenset(
    {
        "apparent_temperature", "precipitation", "precipitation_probability", "rain", "showers",
        "snowfall", "snow_depth", "weather_code", "pressure_msl", "surface_pressure", "cloud_cover",
        "cloud_cover_low", "cloud_cover_mid", "cloud_cover_high", "visibility", "evapotranspiration",
        "et0_fao_evapotranspiration", "vapour_pressure_deficit", "uv_index", "uv_index_clear_sky",
        "is_day", "sunshine_duration", "cape", "lifted_index", "convective_inhibition",
        "freezing_level_height", "boundary_layer_height", "shortwave_radiation", "direct_radiation",
        "diffuse_radiation", "direct_normal_irradiance", "global_tilted_irradiance",
        "terrestrial_radiation", "shortwave_radiation_instant", "direct_radiation_instant",
        "diffuse_radiation_instant", "direct_normal_irradiance_instant", "terrestrial_radiation_instant",
        "total_column_integrated_water_vapour", "snowfall_height", "lightning_potential",
        "soil_temperature_0cm", "soil_temperature_6cm", "soil_temperature_18cm", "soil_temperature_54cm",
        "soil_moisture_0_to_1cm", "soil_moisture_1_to_3cm", "soil_moisture_3_to_9cm",
        "soil_moisture_9_to_27cm", "soil_moisture_27_to_81cm",
    }
)  # fmt: skip
# Daily variables that are not `<hourly>_<aggregation>`.
PLAIN_DAILY = frozenset(
    {"weather_code", "sunrise", "sunset", "daylight_duration", "precipitation_hours", "sunshine_duration"}
)
AGGREGATIONS = ("max", "min", "mean", "sum", "dominant")
# Old spellings Open-Meteo still accepts, as substring replacements.
LEGACY = (
    ("windspeed", "wind_speed"),
    ("winddirection", "wind_direction"),
    ("windgusts", "wind_gusts"),
    ("weathercode", "weather_code"),
    ("relativehumidity", "relative_humidity"),
    ("dewpoint", "dew_point"),
    ("cloudcover", "cloud_cover"),
    ("freezinglevel_height", "freezing_level_height"),
    ("vapor_pressure_deficit", "vapour_pressure_deficit"),
)

_LEVEL = re.compile(r"^(?P<quantity>[a-z_]+)_(?P<level>\d+)hPa$")
_HEIGHT = re.compile(r"^(?P<quantity>[a-z_]+?)_(?P<height>\d+)m$")


@dataclass(frozen=True)
class OmName:
    """One hourly Open-Meteo quantity: `temperature` at 2 m, `geopotential_height` at 500 hPa..."""

    quantity: str
    height_m: int | None = None
    level_hpa: int | None = None

    @property
    def canonical(self) -> str:
        if self.level_hpa is not None:
            return f"{self.quantity}_{self.level_hpa}hPa"
        if self.height_m is not None:
            return f"{self.quantity}_{self.height_m}m"
        return self.quantity


@dataclass(frozen=True)
class DailyName:
    """A daily variable: an hourly quantity and how a day of it is aggregated (`None` for plain ones)."""

    hourly: OmName
    aggregation: str | None


def modern_spelling(name: str) -> str:
    for old, new in LEGACY:
        name = name.replace(old, new)
    return name


def parse_hourly(name: str) -> OmName | None:
    """The quantity an hourly (or current) name stands for, or None when Open-Meteo has no such name."""
    modern = modern_spelling(name)
    if modern in PLAIN_HOURLY:
        return OmName(modern)
    level = _LEVEL.match(modern)
    if level and level["quantity"] in LEVEL_QUANTITIES and int(level["level"]) in PRESSURE_LEVELS:
        return OmName(level["quantity"], level_hpa=int(level["level"]))
    height = _HEIGHT.match(modern)
    if height and int(height["height"]) in HEIGHT_QUANTITIES.get(height["quantity"], ()):
        return OmName(height["quantity"], height_m=int(height["height"]))
    return None


def parse_daily(name: str) -> DailyName | None:
    """What a daily name aggregates, or None when Open-Meteo has no such daily name."""
    modern = modern_spelling(name)
    if modern in PLAIN_DAILY:
        return DailyName(OmName(modern), None)
    base, _, aggregation = modern.rpartition("_")
    if aggregation not in AGGREGATIONS:
        return None
    hourly = parse_hourly(base)
    if hourly is None:
        return None
    if aggregation == "dominant" and hourly.quantity != "wind_direction":
        return None
    return DailyName(hourly, aggregation)
