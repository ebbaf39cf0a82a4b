"""From a bundle's channels to Open-Meteo variables: which channel answers which name, in which units.

Channels are matched by their variable (CF / GRIB / NCEP short names: `t`, `air`, `2t`, `z`, `hgt`, `u`,
`10u`, `msl`, `prmsl`, `tp`...), their level (hPa) and their units; a channel whose units are not
recognised is left unmapped rather than guessed. Wind speed and direction are derived from u and v.
The lowest-level air temperature of a model without a 2 m temperature (NCEP's `air` at sigma 0.995,
about 40 m above ground) is served as `temperature_2m`; `describe_mapping` says so for /v1/models/{id}.
Values are converted to Open-Meteo's units (°C, km/h, mm, hPa, m, %), then to the requested ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import numpy as np

from fno_forecast.data.schema import ChannelInfo, DataSchema
from service.om_names import OmName

G = 9.80665  # m s-2, geopotential to geopotential height

TEMPERATURE = {"t", "ta", "air", "tmp", "temperature", "air_temperature"}
TEMPERATURE_2M = {"2t", "t2m", "tas"}
GEOPOTENTIAL = {"z", "geopotential"}
HEIGHT = {"hgt", "gh", "zg", "geopotential_height"}
U_WIND = {"u", "ua", "uwnd", "ugrd"}
V_WIND = {"v", "va", "vwnd", "vgrd"}
U_10M = {"10u", "u10", "uas"}
V_10M = {"10v", "v10", "vas"}
MSL = {"msl", "prmsl", "psl", "mslp", "slp"}
SURFACE_PRESSURE = {"sp", "ps", "pres"}
PRECIPITATION = {"tp", "pr", "prate", "apcp", "precip", "precipitation"}
HUMIDITY = {"r", "rh", "rhum", "hur", "relative_humidity"}
HUMIDITY_2M = {"2r", "r2", "hurs"}
DEW_POINT_2M = {"2d", "d2m", "dpt"}
CLOUD_COVER = {"tcc", "clt"}

# A channel's units (lower case, spaces removed) -> (scale, offset) to Open-Meteo's base unit.
KELVIN = {"k", "degk", "kelvin"}
CELSIUS = {"degc", "c", "°c", "celsius"}
SPEED = {"ms-1", "m/s", "ms**-1", "meter/second", "metre/second"}
GEOPOTENTIAL_UNITS = {"m2s-2", "m**2s**-2", "m^2/s^2", "m2/s2"}
METRES = {"m", "gpm", "metre", "meter"}
PASCAL = {"pa", "pascal"}
HECTOPASCAL = {"hpa", "mb", "millibar", "mbar"}
PERCENT = {"%", "percent"}
FRACTION = {"1", "0-1", "(0-1)", "fraction", ""}
RATE = {"kgm-2s-1", "kgm**-2s**-1", "mm/s"}


@dataclass(frozen=True)
class Source:
    """A channel that answers an Open-Meteo quantity: `base = value * scale + offset`."""

    channel: int
    scale: float = 1.0
    offset: float = 0.0
    note: str = ""

    def read(self, values: np.ndarray) -> np.ndarray:
        """`values (..., channel)` -> this quantity in Open-Meteo's base unit."""
        return values[..., self.channel] * self.scale + self.offset


def _units(channel: ChannelInfo) -> str:
    return channel.units.lower().replace(" ", "")


def _temperature(i: int, units: str) -> Source | None:
    if units in KELVIN:
        return Source(i, 1.0, -273.15)
    return Source(i) if units in CELSIUS else None


def _match(i: int, channel: ChannelInfo, step_hours: float) -> tuple[OmName, Source] | None:
    """What channel `i` is in Open-Meteo's vocabulary, or None."""
    var, units, level = channel.variable.lower(), _units(channel), channel.level
    hpa = int(round(level)) if level is not None else None
    if var in TEMPERATURE_2M or (var in TEMPERATURE and level is None):
        source = _temperature(i, units)
        if source is None:
            return None
        if var in TEMPERATURE:
            note = (
                f"channel {channel.name!r} ({channel.long_name or 'air temperature'}): air temperature at the "
                "model's lowest level, not at 2 m; served as temperature_2m as the model has no 2 m temperature"
            )
            source = Source(source.channel, source.scale, source.offset, note)
        return OmName("temperature", height_m=2), source
    if var in TEMPERATURE and hpa is not None:
        source = _temperature(i, units)
        return None if source is None else (OmName("temperature", level_hpa=hpa), source)
    if (var in GEOPOTENTIAL or var in HEIGHT) and hpa is not None:
        if units in GEOPOTENTIAL_UNITS:
            return OmName("geopotential_height", level_hpa=hpa), Source(i, 1.0 / G)
        if units in METRES:
            return OmName("geopotential_height", level_hpa=hpa), Source(i)
        return None
    wind = {**dict.fromkeys(U_WIND, "u"), **dict.fromkeys(V_WIND, "v")}
    if var in wind and hpa is not None and units in SPEED:
        return OmName(f"wind_{wind[var]}_component", level_hpa=hpa), Source(i)
    if (var in U_10M or var in V_10M) and units in SPEED:
        return OmName(f"wind_{'u' if var in U_10M else 'v'}_component", height_m=10), Source(i)
    if var in MSL or (var in SURFACE_PRESSURE and level is None):
        quantity = "pressure_msl" if var in MSL else "surface_pressure"
        if units in PASCAL:
            return OmName(quantity), Source(i, 0.01)
        return (OmName(quantity), Source(i)) if units in HECTOPASCAL else None
    if var in PRECIPITATION:
        per_hour = {**dict.fromkeys(RATE, 3600.0), "m": 1000.0 / step_hours, "mm": 1.0 / step_hours}
        if units not in per_hour:
            return None
        return OmName("precipitation"), Source(
            i, per_hour[units], 0.0, "mm in the hour, the step's mean rate"
        )
    if var in HUMIDITY or var in HUMIDITY_2M:
        name = OmName("relative_humidity", height_m=2) if level is None else None
        if hpa is not None and var in HUMIDITY:
            name = OmName("relative_humidity", level_hpa=hpa)
        scale = 1.0 if units in PERCENT else 100.0 if units in FRACTION else None
        return None if name is None or scale is None else (name, Source(i, scale))
    if var in DEW_POINT_2M:
        source = _temperature(i, units)
        return None if source is None else (OmName("dew_point", height_m=2), source)
    if var in CLOUD_COVER:
        scale = 1.0 if units in PERCENT else 100.0 if units in FRACTION else None
        return None if scale is None else (OmName("cloud_cover"), Source(i, scale))
    return None


@dataclass(frozen=True)
class Quantity:
    """How to compute one Open-Meteo quantity from the channels; `sources` empty when the model lacks it."""

    name: OmName
    kind: str  # "direct", "speed" (from u, v), "direction" (from u, v), "missing"
    sources: tuple[Source, ...]

    def base_values(self, values: np.ndarray) -> np.ndarray:
        """`values (..., channel)` -> `(...)` in Open-Meteo's base unit (NaN when the model lacks it)."""
        if self.kind == "missing":
            return np.full(values.shape[:-1], np.nan)
        if self.kind == "direct":
            return self.sources[0].read(values)
        u, v = self.sources[0].read(values), self.sources[1].read(values)
        if self.kind == "speed":
            return np.hypot(u, v)
        # Meteorological direction: where the wind blows from, degrees clockwise from north.
        return np.mod(np.degrees(np.arctan2(-u, -v)), 360.0)


@cache
def channel_map(schema: DataSchema) -> dict[OmName, Source]:
    """Every Open-Meteo quantity a channel answers directly (the first matching channel wins)."""
    found: dict[OmName, Source] = {}
    for i, channel in enumerate(schema.channels):
        matched = _match(i, channel, schema.step_hours)
        if matched is not None and matched[0] not in found:
            found[matched[0]] = matched[1]
    return found


def quantity(schema: DataSchema, name: OmName) -> Quantity:
    """How `name` is computed from `schema`'s channels (kind "missing" when it cannot be)."""
    found = channel_map(schema)
    if name in found:
        return Quantity(name, "direct", (found[name],))
    if name.quantity in ("wind_speed", "wind_direction"):
        u = found.get(OmName("wind_u_component", name.height_m, name.level_hpa))
        v = found.get(OmName("wind_v_component", name.height_m, name.level_hpa))
        if u is not None and v is not None:
            return Quantity(name, "speed" if name.quantity == "wind_speed" else "direction", (u, v))
    return Quantity(name, "missing", ())


def describe_mapping(schema: DataSchema) -> dict[str, str]:
    """`{open-meteo name: what answers it}` for /v1/models/{id}."""
    found = channel_map(schema)
    out = {}
    for name, source in found.items():
        channel = schema.channels[source.channel]
        out[name.canonical] = source.note or f"channel {channel.name!r} ({channel.units})"
    for name in list(found):
        if name.quantity == "wind_u_component":
            for derived in ("wind_speed", "wind_direction"):
                target = OmName(derived, name.height_m, name.level_hpa)
                if quantity(schema, target).kind != "missing":
                    out[target.canonical] = "derived from the u and v channels"
    return out


@dataclass(frozen=True)
class Units:
    """The requested units: `temperature_unit`, `wind_speed_unit`, `precipitation_unit`."""

    temperature: str = "celsius"
    wind_speed: str = "kmh"
    precipitation: str = "mm"


TEMPERATURE_UNITS = {"celsius": ("°C", lambda c: c), "fahrenheit": ("°F", lambda c: c * 9.0 / 5.0 + 32.0)}
WIND_UNITS = {
    "kmh": ("km/h", 3.6),
    "ms": ("m/s", 1.0),
    "mph": ("mp/h", 3600.0 / 1609.344),
    "kn": ("kn", 3600.0 / 1852.0),
}
PRECIPITATION_UNITS = {"mm": ("mm", 1.0), "inch": ("inch", 1.0 / 25.4)}
BASE_UNITS = {
    "geopotential_height": "m",
    "pressure_msl": "hPa",
    "surface_pressure": "hPa",
    "relative_humidity": "%",
    "cloud_cover": "%",
    "wind_direction": "°",
    "weather_code": "wmo code",
}
TEMPERATURE_LIKE = {"temperature", "dew_point", "apparent_temperature", "wet_bulb_temperature"}
PRECIPITATION_LIKE = {"precipitation", "rain", "showers", "snowfall"}


def converter(name: OmName, units: Units) -> tuple[str, Callable[[np.ndarray], np.ndarray]]:
    """The unit label and the conversion from Open-Meteo's base unit for `name` in the requested units."""
    if name.quantity in TEMPERATURE_LIKE or name.quantity.startswith("soil_temperature"):
        return TEMPERATURE_UNITS[units.temperature]
    if name.quantity in ("wind_speed", "wind_gusts", "wind_u_component", "wind_v_component"):
        label, factor = WIND_UNITS[units.wind_speed]
        return label, lambda x: x * factor
    if name.quantity in PRECIPITATION_LIKE:
        label, factor = PRECIPITATION_UNITS[units.precipitation]
        return label, lambda x: x * factor
    return BASE_UNITS.get(name.quantity, ""), lambda x: x
