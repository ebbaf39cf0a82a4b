"""The CF dataset of a forecast: canonical channels back to the user's variables, with provenance.

Channels named `{var}{level}` are stacked back into one variable with a `level` dim; each variable keeps
the name and the units (and long/standard names) it had in the initial state. Coordinates follow CF:
`init_time` (forecast_reference_time), `lead_time` (forecast_period, hours) and `valid_time` (time).
Latitudes come out in the canonical order (north to south).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from fno_forecast.data.schema import DataSchema

if TYPE_CHECKING:
    from fno_forecast.bundle import Bundle

KEPT_ATTRS = ("units", "long_name", "standard_name")
COORD_ATTRS: dict[str, dict[str, str]] = {
    "lat": {"standard_name": "latitude", "long_name": "latitude", "units": "degrees_north", "axis": "Y"},
    "lon": {"standard_name": "longitude", "long_name": "longitude", "units": "degrees_east", "axis": "X"},
    "init_time": {"standard_name": "forecast_reference_time", "long_name": "initialisation time"},
    "lead_time": {"standard_name": "forecast_period", "long_name": "forecast lead time"},
    "valid_time": {"standard_name": "time", "long_name": "valid time"},
}


def _valid_times(init_times: np.ndarray, lead_hours: float) -> np.ndarray:
    if np.asarray(init_times).dtype.kind == "M":
        return init_times + np.timedelta64(int(round(lead_hours * 3600)), "s")
    return np.asarray([t + dt.timedelta(hours=lead_hours) for t in init_times], dtype=object)


def _variable_attrs(name: str, source: xr.Dataset, schema: DataSchema) -> dict[str, Any]:
    attrs = {k: v for k, v in source[name].attrs.items() if k in KEPT_ATTRS} if name in source else {}
    info = next((c for c in schema.channels if c.variable == name), None)
    if info is not None:
        if info.units and "units" not in attrs:
            attrs["units"] = info.units
        if info.long_name and "long_name" not in attrs:
            attrs["long_name"] = info.long_name
    return attrs


def fields_to_dataset(
    fields: np.ndarray,
    *,
    lead_hours: float,
    init_times: np.ndarray,
    lat: np.ndarray,
    lon: np.ndarray,
    schema: DataSchema,
    source: xr.Dataset,
) -> xr.Dataset:
    """One lead of a forecast: `fields (B, C, H, W)` -> variables `([init_time,] [level,] lat, lon)`."""
    several = len(init_times) > 1
    lead = np.timedelta64(int(round(lead_hours * 3600)), "s").astype("timedelta64[ns]")
    valid = _valid_times(init_times, lead_hours)
    coords: dict[str, Any] = {
        "lat": ("lat", lat, COORD_ATTRS["lat"]),
        "lon": ("lon", lon, COORD_ATTRS["lon"]),
        "lead_time": ((), lead, COORD_ATTRS["lead_time"]),
    }
    if several:
        coords["init_time"] = ("init_time", init_times, COORD_ATTRS["init_time"])
        coords["valid_time"] = ("init_time", valid, COORD_ATTRS["valid_time"])
    else:
        coords["init_time"] = ((), init_times[0], COORD_ATTRS["init_time"])
        coords["valid_time"] = ((), valid[0], COORD_ATTRS["valid_time"])
    level_attrs = dict(source["level"].attrs) if "level" in source.coords else {}
    variables: dict[str, xr.DataArray] = {}
    for name in dict.fromkeys(c.variable for c in schema.channels):
        index = [i for i, c in enumerate(schema.channels) if c.variable == name]
        levels = [schema.channels[i].level for i in index]
        values = fields[:, index]  # (B, n_levels, H, W)
        dims: tuple[str, ...] = ("init_time",) if several else ()
        var_coords = dict(coords)
        if levels[0] is None:
            values = values[:, 0]
        else:
            dims += ("level",)
            var_coords["level"] = ("level", np.asarray(levels, dtype=np.float64), level_attrs)
        if not several:
            values = values[0]
        dims += ("lat", "lon")
        variables[name] = xr.DataArray(
            values.astype(np.float32),
            dims=dims,
            coords=var_coords,
            attrs=_variable_attrs(name, source, schema),
        )
    return xr.Dataset(variables)


def finish_forecast(
    pieces: Sequence[xr.Dataset], *, bundle: Bundle, initial_state: xr.Dataset, version: str
) -> xr.Dataset:
    """Stack the leads into one dataset `([init_time,] lead_time, [level,] lat, lon)` with CF attributes."""
    valid = xr.concat(
        [p["valid_time"].expand_dims("lead_time") for p in pieces],
        dim="lead_time",
        coords="minimal",
        compat="override",
    )
    stacked = [p.drop_vars("valid_time").expand_dims("lead_time") for p in pieces]
    dataset = xr.concat(stacked, dim="lead_time", coords="minimal", compat="equals", join="exact")
    order = [d for d in ("init_time", "lead_time", "level", "lat", "lon") if d in dataset.dims]
    dataset = dataset.transpose(*order)
    dataset = dataset.assign_coords(valid_time=valid.transpose(*[d for d in order if d in valid.dims]))
    for name, attrs in COORD_ATTRS.items():
        if name in dataset.coords:
            dataset[name].attrs.update(attrs)
    model = bundle.metadata.get("model", {})
    model_name = model.get("name", "unknown") if isinstance(model, dict) else str(model)
    data_source = str(initial_state.attrs.get("source") or initial_state.attrs.get("title") or "unknown")
    created = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    dataset.attrs = {
        "Conventions": "CF-1.8",
        "title": f"fno-forecast {model_name} forecast",
        "source": f"fno-forecast {version}, model {model_name} (bundle sha256 {bundle.sha256})",
        "history": f"{created} created by fno-forecast {version}",
        "model_name": model_name,
        "model_sha256": bundle.sha256,
        "data_source": data_source,
        "package_version": version,
        "created": created,
        "step_hours": float(bundle.step_hours),
    }
    return dataset
