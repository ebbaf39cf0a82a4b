"""Find the time, latitude, longitude and level coordinates of a dataset and rename them.

CF attributes decide first (`standard_name`, `axis`, `units`), common names second, in any case
(`lat`/`latitude`/`y`, `lon`/`longitude`/`x`, `time`/`valid_time`, `level`/`plev`/`isobaricInhPa`/
`pressure`). After `normalize_coords` a dataset has dims named `time`, `lat`, `lon` and, where the data
has vertical levels, `level` (pressure levels in hPa). Other singleton dims (`step`, `surface`, a
one-member `number`) are dropped; an ensemble `number` dim of size > 1 is reduced by `choose_member`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import xarray as xr

from fno_forecast.errors import DataError

NOMINAL_YEAR = 2000
_NAMES = {
    "time": ("time", "valid_time", "times", "date", "datetime", "t"),
    "lat": ("lat", "latitude", "lats", "y", "nav_lat", "rlat"),
    "lon": ("lon", "longitude", "lons", "x", "nav_lon", "rlon"),
    "level": (
        "level",
        "levels",
        "plev",
        "lev",
        "isobaricinhpa",
        "isobaricinpa",
        "pressure",
        "pressure_level",
        "pressure_levels",
        "air_pressure",
        "z_level",
    ),
}
_STANDARD = {
    "time": ("time",),
    "lat": ("latitude", "grid_latitude"),
    "lon": ("longitude", "grid_longitude"),
    "level": ("air_pressure", "atmosphere_sigma_coordinate", "model_level_number"),
}
_AXIS = {"time": "T", "lat": "Y", "lon": "X", "level": "Z"}
_UNITS = {
    "lat": ("degrees_north", "degree_north", "degree_n", "degrees_n", "degreen", "degreesn"),
    "lon": ("degrees_east", "degree_east", "degree_e", "degrees_e", "degreee", "degreese"),
    "level": ("hpa", "pa", "mbar", "millibar", "mb"),
}
ENSEMBLE_DIMS = ("number", "member", "realization", "ensemble", "ens")


@dataclass(frozen=True)
class CoordNames:
    """Names found in the source for each role (None where absent)."""

    time: str | None
    lat: str | None
    lon: str | None
    level: str | None


def _candidates(dataset: xr.Dataset) -> list[str]:
    names = list(dataset.dims) + [n for n in dataset.coords if n not in dataset.dims]
    return [str(n) for n in names]


def _score(dataset: xr.Dataset, name: str, role: str) -> int:
    var = dataset[name] if name in dataset.variables else None
    attrs = {k.lower(): str(v).lower() for k, v in (var.attrs if var is not None else {}).items()}
    if attrs.get("standard_name") in _STANDARD[role]:
        return 4
    if attrs.get("axis", "").upper() == _AXIS[role]:
        return 3
    units = attrs.get("units", "").replace(" ", "")
    if role in _UNITS and units in _UNITS[role]:
        return 2
    is_dates = var is not None and (var.dtype.kind == "M" or " since " in attrs.get("units", ""))
    if role == "time" and is_dates and name.lower() in _NAMES["time"]:
        return 2
    if name.lower() in _NAMES[role]:
        return 1
    return 0


def find_coords(dataset: xr.Dataset) -> CoordNames:
    """The best candidate name for each role; dimension coordinates win over auxiliary ones."""
    found: dict[str, str | None] = {}
    taken: set[str] = set()
    for role in ("time", "lat", "lon", "level"):
        best, best_score = None, 0
        for name in _candidates(dataset):
            if name in taken:
                continue
            base = _score(dataset, name, role)
            if base == 0:
                continue
            known = _NAMES[role]
            rank = len(known) - known.index(name.lower()) if name.lower() in known else 0
            score = base * 1000 + (100 if name in dataset.dims else 0) + rank
            if score > best_score:
                best, best_score = name, score
        found[role] = best
        if best is not None:
            taken.add(best)
    return CoordNames(**found)


def _level_to_hpa(dataset: xr.Dataset, notes: list[str]) -> xr.Dataset:
    level = dataset["level"]
    units = str(level.attrs.get("units", "")).strip().lower()
    if units == "pa" or (units in ("", "pascal") and float(np.nanmax(level.values)) > 2000.0):
        dataset = dataset.assign_coords(level=(level.dims, level.values / 100.0, {"units": "hPa"}))
        notes.append("pressure levels converted from Pa to hPa")
    return dataset


def _month_as_time(dataset: xr.Dataset, path: str, notes: list[str]) -> xr.Dataset:
    months = np.asarray(dataset["month"].values).astype(np.int64) if "month" in dataset.variables else None
    if months is None or months.ndim != 1 or np.any((months < 1) | (months > 12)):
        raise DataError(path, "no time coordinate (and no `month` coordinate of values 1..12)")
    times = np.array([np.datetime64(f"{NOMINAL_YEAR:04d}-{m:02d}-01", "ns") for m in months])
    notes.append(
        f"no time coordinate: the `month` dim ({', '.join(str(m) for m in months)}) is read as monthly "
        f"means placed in the nominal year {NOMINAL_YEAR}"
    )
    return dataset.assign_coords(month=("month", times)).rename({"month": "time"})


def normalize_coords(dataset: xr.Dataset, *, path: str, notes: list[str]) -> xr.Dataset:
    """Rename to `time`, `lat`, `lon`, `level`; give scalar times a length-1 time dim.

    Appends a human-readable note to `notes` for every decision that changes the data's meaning.
    """
    dataset = _forecast_as_time_series(dataset, path, notes)
    names = find_coords(dataset)
    if names.lat is None or names.lon is None:
        missing = [role for role, n in (("latitude", names.lat), ("longitude", names.lon)) if n is None]
        raise DataError(
            path,
            f"no {' or '.join(missing)} coordinate found (looked for CF attributes and names like lat/lon)",
        )
    if names.time is None:
        if "month" in dataset.dims:
            dataset = _month_as_time(dataset, path, notes)
            names = find_coords(dataset)
        else:
            raise DataError(
                path, "no time coordinate (looked for CF attributes and names like time/valid_time)"
            )
    rename = {}
    for role in ("time", "lat", "lon", "level"):
        name = getattr(names, role)
        if name is not None and name != role:
            rename[name] = role
    # A source's auxiliary coordinate may already be called e.g. `time` while `valid_time` is chosen.
    clash = [role for role in rename.values() if role in dataset.variables and role not in rename]
    with warnings.catch_warnings():
        # Renaming `valid_time` onto the `time` dim makes a coordinate without an index; one is set below.
        warnings.filterwarnings("ignore", message="rename .* does not create an index")
        dataset = dataset.drop_vars(clash).rename(rename)
    if "time" in dataset.dims and dataset["time"].dims == ("time",) and "time" not in dataset.indexes:
        dataset = dataset.set_xindex("time")
    valid = dataset.get("valid_time")
    if valid is not None and valid.dims == dataset["time"].dims and "step" in dataset.variables:
        # A GRIB forecast message: `time` is the run, `valid_time` = time + step is what the field shows.
        dataset = dataset.assign_coords(time=valid.variable).drop_vars("valid_time")
    if dataset["time"].ndim == 0:
        dataset = dataset.expand_dims("time")
    elif "time" not in dataset.dims:
        raise DataError(path, f"time coordinate {names.time!r} is not one-dimensional along a dimension")
    for role in ("lat", "lon"):
        if role not in dataset.dims or dataset[role].ndim != 1:
            raise DataError(
                path, f"{role} coordinate is not one-dimensional (curvilinear grids are not supported)"
            )
    if "level" in dataset.variables:
        dataset = dataset.drop_vars("level") if dataset["level"].ndim == 0 else _level_to_hpa(dataset, notes)
    return dataset


def _forecast_as_time_series(dataset: xr.Dataset, path: str, notes: list[str]) -> xr.Dataset:
    """A forecast file (dims `lead_time`, coordinate `valid_time`) reads as a series over its valid times."""
    if "lead_time" not in dataset.dims or "valid_time" not in dataset.coords:
        return dataset
    if "init_time" in dataset.dims:
        if dataset.sizes["init_time"] > 1:
            raise DataError(
                path,
                f"forecast file with {dataset.sizes['init_time']} init times: select one first "
                "(e.g. xarray's .isel(init_time=0)) to read it as a time series",
            )
        dataset = dataset.isel(init_time=0)
    if dataset["valid_time"].dims != ("lead_time",):
        return dataset
    notes.append("forecast file: its valid_time is used as the time axis")
    return dataset.swap_dims(lead_time="valid_time").drop_vars("lead_time")


def choose_member(
    dataset: xr.Dataset, *, member: int | None, path: str, notes: list[str]
) -> tuple[xr.Dataset, int | None]:
    """Reduce an ensemble dim to one member: `member` is a member number (default: the first)."""
    dims = [d for d in dataset.dims if str(d).lower() in ENSEMBLE_DIMS and dataset.sizes[d] > 1]
    if not dims:
        return dataset, None
    dim = dims[0]
    values = np.asarray(dataset[dim].values) if dim in dataset.variables else np.arange(dataset.sizes[dim])
    if member is None:
        index = 0
        notes.append(f"ensemble of {values.size} members ({dim}): member {int(values[0])} used (the first)")
    else:
        where = np.flatnonzero(values == member)
        if where.size == 0:
            raise DataError(path, f"member {member} absent; members present: {[int(v) for v in values]}")
        index = int(where[0])
        notes.append(f"ensemble of {values.size} members ({dim}): member {member} used")
    return dataset.isel({dim: index}, drop=True), int(values[index])


def drop_singletons(dataset: xr.Dataset) -> xr.Dataset:
    """Drop dims of size 1 other than time/lat/lon/level, and scalar auxiliary coordinates."""
    keep = {"time", "lat", "lon", "level"}
    singles = {d: 0 for d in dataset.dims if d not in keep and dataset.sizes[d] == 1}
    if singles:
        dataset = dataset.isel(singles, drop=True)
    scalars = [n for n in dataset.coords if dataset[n].ndim == 0]
    extra = [n for n in dataset.coords if n not in dataset.dims and n not in scalars and n != "time"]
    return dataset.drop_vars(scalars + extra)
