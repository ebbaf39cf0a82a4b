"""`format=flatbuffers`: the answer as Open-Meteo's SDKs read it, one size-prefixed `WeatherApiResponse`
per location, concatenated in one body (what `openmeteo_requests` and the npm `openmeteo` package split).

The schema is the one Open-Meteo publishes in `openmeteo-sdk`. That package ships the readers only (its
`.pyi` stubs name builder functions the modules do not define), so each field's slot and scalar type
are read from the shipped reader classes themselves (`self._tab.Offset(N)`, `number_types.XFlags`):
nothing of the layout is written here, and a new SDK release that moves a field moves it here too.
Missing values are NaN, as Open-Meteo sends them.
"""

from __future__ import annotations

import inspect
import re
from functools import cache

import flatbuffers
import numpy as np
from flatbuffers import number_types
from openmeteo_sdk.Aggregation import Aggregation
from openmeteo_sdk.Unit import Unit
from openmeteo_sdk.Variable import Variable
from openmeteo_sdk.VariablesWithTime import VariablesWithTime
from openmeteo_sdk.VariableWithValues import VariableWithValues
from openmeteo_sdk.WeatherApiResponse import WeatherApiResponse

from service.om_request import ForecastRequest
from service.om_series import LocationAnswer, Series
from service.pointjson import elevation

UNITS = {
    "°C": Unit.celsius, "°F": Unit.fahrenheit, "K": Unit.kelvin, "degK": Unit.kelvin,
    "km/h": Unit.kilometres_per_hour, "m/s": Unit.metre_per_second, "mp/h": Unit.miles_per_hour,
    "kn": Unit.knots, "mm": Unit.millimetre, "inch": Unit.inch, "hPa": Unit.hectopascal, "m": Unit.metre,
    "%": Unit.percentage, "°": Unit.degree_direction, "wmo code": Unit.wmo_code,
}  # fmt: skip
AGGREGATIONS = {
    "max": Aggregation.maximum,
    "min": Aggregation.minimum,
    "mean": Aggregation.mean,
    "sum": Aggregation.sum,
    "dominant": Aggregation.dominant,
}
_OFFSET = re.compile(r"self\._tab\.Offset\((\d+)\)")
_FLAGS = re.compile(r"number_types\.(\w+Flags), o \+")


@cache
def field(table: type, name: str) -> tuple[int, object | None]:
    """`(slot, scalar flags or None for offsets)` of `table.name`, read from the SDK's reader method."""
    source = inspect.getsource(getattr(table, name))
    offset = _OFFSET.search(source)
    if offset is None:
        raise RuntimeError(f"openmeteo_sdk {table.__name__}.{name}: no vtable offset in the reader")
    flags = _FLAGS.search(source)
    return (int(offset[1]) - 4) // 2, getattr(number_types, flags[1]) if flags else None


def _scalar(builder: flatbuffers.Builder, table: type, name: str, value: float | int) -> None:
    slot, flags = field(table, name)
    builder.PrependSlot(flags, slot, value, None)  # no default: every value is written


def _offset(builder: flatbuffers.Builder, table: type, name: str, value: int) -> None:
    slot, _ = field(table, name)
    builder.PrependUOffsetTRelativeSlot(slot, value, 0)


def _variable(builder: flatbuffers.Builder, series: Series, *, scalar: bool) -> int:
    values = np.asarray(series.values, dtype=np.float32)
    vector = None if scalar else builder.CreateNumpyVector(values)
    builder.StartObject(32)
    name = series.name
    enum = getattr(Variable, name.quantity, Variable.undefined) if name is not None else Variable.undefined
    _scalar(builder, VariableWithValues, "Variable", enum)
    _scalar(builder, VariableWithValues, "Unit", UNITS.get(series.unit, Unit.undefined))
    if name is not None and name.height_m is not None:
        _scalar(builder, VariableWithValues, "Altitude", name.height_m)
    if name is not None and name.level_hpa is not None:
        _scalar(builder, VariableWithValues, "PressureLevel", name.level_hpa)
    if series.aggregation is not None:
        _scalar(builder, VariableWithValues, "Aggregation", AGGREGATIONS[series.aggregation])
    if scalar:
        _scalar(builder, VariableWithValues, "Value", float(values[0]))
    else:
        _offset(builder, VariableWithValues, "Values", vector)
    return builder.EndObject()


def _block(
    builder: flatbuffers.Builder,
    series: tuple[Series, ...],
    times: np.ndarray,
    interval: int,
    *,
    scalar: bool = False,
) -> int:
    tables = [_variable(builder, s, scalar=scalar) for s in series]
    builder.StartVector(4, len(tables), 4)
    for table in reversed(tables):
        builder.PrependUOffsetTRelative(table)
    vector = builder.EndVector()
    start = int(times[0].astype("datetime64[s]").astype(np.int64)) if len(times) else 0
    builder.StartObject(8)
    _scalar(builder, VariablesWithTime, "Time", start)
    _scalar(builder, VariablesWithTime, "TimeEnd", start + interval * (1 if scalar else len(times)))
    _scalar(builder, VariablesWithTime, "Interval", interval)
    _offset(builder, VariablesWithTime, "Variables", vector)
    return builder.EndObject()


def location_message(
    request: ForecastRequest, answer: LocationAnswer, index: int, *, generation_ms: float
) -> bytes:
    builder = flatbuffers.Builder(1024)
    local = answer.location.local
    timezone = builder.CreateString(local.timezone)
    abbreviation = builder.CreateString(local.abbreviation)
    blocks = {}
    if request.current:
        blocks["Current"] = _block(builder, answer.current, np.array([answer.current_time]), 900, scalar=True)
    if request.hourly:
        blocks["Hourly"] = _block(builder, answer.hourly, answer.hourly_times, 3600)
    if request.daily:
        blocks["Daily"] = _block(builder, answer.daily, answer.daily_times, 86400)
    builder.StartObject(16)
    _scalar(builder, WeatherApiResponse, "Latitude", float(answer.weights.latitude))
    _scalar(builder, WeatherApiResponse, "Longitude", float(answer.weights.longitude))
    _scalar(builder, WeatherApiResponse, "Elevation", elevation(answer))
    _scalar(builder, WeatherApiResponse, "GenerationTimeMilliseconds", float(generation_ms))
    _scalar(builder, WeatherApiResponse, "LocationId", index)
    _scalar(builder, WeatherApiResponse, "UtcOffsetSeconds", local.utc_offset_seconds)
    _offset(builder, WeatherApiResponse, "Timezone", timezone)
    _offset(builder, WeatherApiResponse, "TimezoneAbbreviation", abbreviation)
    for name, table in blocks.items():
        _offset(builder, WeatherApiResponse, name, table)
    builder.FinishSizePrefixed(builder.EndObject())
    return bytes(builder.Output())


def render_flatbuffers(
    request: ForecastRequest, answers: list[LocationAnswer], *, generation_ms: float
) -> bytes:
    return b"".join(
        location_message(request, a, i, generation_ms=generation_ms) for i, a in enumerate(answers)
    )
