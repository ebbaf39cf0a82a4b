"""The canonical array: `(time, channel, lat, lon)` float32, latitude descending, longitude ascending.

`to_channels` turns an opened dataset (see `source.open_source`) into a `Channels`: one channel per
variable, or per variable and level (`z500`, `t850`; levels ascending unless asked in another order),
with units and long names kept in the schema. `open_channels` opens and converts in one call. Both stay
lazy when the source is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from fno_forecast.data.schema import ChannelInfo, DataSchema, GridInfo
from fno_forecast.data.source import PathsLike, open_source
from fno_forecast.data.timeaxis import TimeInfo, period_mask, time_info, times_to_hours
from fno_forecast.errors import DataError


@dataclass(frozen=True)
class Channels:
    """A canonical array with its schema and time axis.

    `array` is an `xr.DataArray` named `state`, dims `(time, channel, lat, lon)`, float32 (dask-backed
    when the source is lazy); `array.attrs["source"]` names the file(s) for error messages.
    """

    array: xr.DataArray
    schema: DataSchema
    time: TimeInfo
    source_format: str
    paths: tuple[str, ...]

    def __post_init__(self) -> None:
        if tuple(self.array.dims) != ("time", "channel", "lat", "lon"):
            raise ValueError(f"Channels.array: dims must be (time, channel, lat, lon), got {self.array.dims}")


def level_text(value: float) -> str:
    """A level as it appears in a channel name: `500` for 500.0, `0.995` otherwise."""
    value = float(value)
    return str(int(value)) if value.is_integer() else f"{value:g}"


def _channel_arrays(dataset: xr.Dataset) -> tuple[list[xr.DataArray], list[ChannelInfo]]:
    arrays: list[xr.DataArray] = []
    infos: list[ChannelInfo] = []
    for name, var in dataset.data_vars.items():
        extra = [d for d in var.dims if d not in ("time", "lat", "lon", "level")]
        if extra:
            raise DataError(
                dataset.attrs.get("source_paths", "").split("\n")[0] or None,
                f"variable {name!r} has dims {extra} besides time/level/lat/lon that cannot become channels",
            )
        if "time" not in var.dims:
            var = var.expand_dims(time=dataset["time"].values)
        units = str(var.attrs.get("units", ""))
        long_name = str(var.attrs.get("long_name", var.attrs.get("standard_name", "")))
        levels = var["level"].values if "level" in var.dims else [None]
        for level in levels:
            piece = var if level is None else var.sel(level=level)
            piece = piece.drop_vars("level", errors="ignore").transpose("time", "lat", "lon")
            channel = str(name) if level is None else f"{name}{level_text(level)}"
            arrays.append(piece.astype(np.float32))
            infos.append(
                ChannelInfo(
                    name=channel,
                    variable=str(name),
                    level=None if level is None else float(level),
                    units=units,
                    long_name=long_name,
                )
            )
    return arrays, infos


def subsample(dataset: xr.Dataset, *, step_hours: float, info: TimeInfo) -> xr.Dataset:
    """Keep the times on a `step_hours` grid counted from the first time (e.g. 6-hourly from hourly)."""
    path = dataset.attrs.get("source_paths", "").split("\n")[0] or None
    if info.step_months:
        raise DataError(path, f"step_hours={step_hours:g} cannot subsample monthly data")
    hours = times_to_hours(dataset["time"].values)
    offset = (hours - hours[0]) / step_hours
    keep = np.flatnonzero(np.abs(offset - np.round(offset)) < 1e-6)
    if keep.size < 2:
        raise DataError(path, f"step_hours={step_hours:g} leaves fewer than 2 time steps")
    return dataset.isel(time=keep)


def _located(where: str | None, error: DataError) -> DataError:
    """The same error, naming the source file when it did not say which."""
    return error if error.path is not None else DataError(where, error.reason)


def to_channels(
    dataset: xr.Dataset,
    *,
    step_hours: float | None = None,
    period: str | tuple[Any, Any] | None = None,
    require_regular: bool = True,
) -> Channels:
    """Canonical channels from a dataset with dims `time`, `lat`, `lon` (+ `level`).

    `step_hours` subsamples to that step (it must be a multiple of the data's step). `period`
    (`"START/END"`) keeps only those times. With `require_regular`, an irregular time step (one that is
    not a whole number of steps) is a DataError unless `step_hours` makes it regular.
    """
    paths = tuple(p for p in dataset.attrs.get("source_paths", "").split("\n") if p)
    where = ", ".join(paths) if paths else None
    try:
        return _to_channels(
            dataset,
            paths=paths,
            where=where,
            step_hours=step_hours,
            period=period,
            require_regular=require_regular,
        )
    except DataError as error:
        raise _located(where, error) from None


def _to_channels(
    dataset: xr.Dataset,
    *,
    paths: tuple[str, ...],
    where: str | None,
    step_hours: float | None,
    period: str | tuple[Any, Any] | None,
    require_regular: bool,
) -> Channels:
    notes = [n for n in dataset.attrs.get("notes", "").split("\n") if n]
    if period is not None:
        mask = period_mask(dataset["time"].values, period)
        if not mask.any():
            info = time_info(dataset["time"].values)
            raise DataError(
                where, f"period {period!r} holds no time steps (data covers {info.start} .. {info.end})"
            )
        dataset = dataset.isel(time=np.flatnonzero(mask))
    info = time_info(dataset["time"].values)
    if info.step_months and step_hours is not None and abs(step_hours - info.step_hours) < 1e-6:
        step_hours = None  # monthly data asked for its own step (a monthly bundle's): nothing to subsample
    if step_hours is not None:
        if step_hours <= 0:
            raise DataError(where, f"step_hours must be positive, got {step_hours}")
        if info.steps > 1 and not info.step_months and step_hours % info.step_hours > 1e-6 and info.regular:
            raise DataError(
                where, f"step_hours={step_hours:g} is not a multiple of the data's step {info.step_hours:g} h"
            )
        dataset = subsample(dataset, step_hours=step_hours, info=info)
        info = time_info(dataset["time"].values)
        notes.append(f"subsampled to every {step_hours:g} h")
    if require_regular and not info.regular:
        raise DataError(
            where,
            f"irregular time step (detected {info.step_hours:g} h, but not after "
            f"{', '.join(info.irregular[:3])}{' ...' if len(info.irregular) > 3 else ''}); pass step_hours to subsample",
        )
    dataset = dataset.sortby("lat", ascending=False).sortby("lon")
    arrays, infos = _channel_arrays(dataset)
    names = [c.name for c in infos]
    array = xr.concat(arrays, dim="channel", coords="minimal", compat="override", join="exact")
    array = array.assign_coords(channel=np.array(names, dtype=object)).transpose(
        "time", "channel", "lat", "lon"
    )
    array = array.astype(np.float32).rename("state")
    array.attrs = {"source": ", ".join(paths)}
    member = dataset.attrs.get("member")
    schema = DataSchema(
        channels=tuple(infos),
        grid=GridInfo.from_arrays(dataset["lat"].values, dataset["lon"].values),
        step_hours=float(info.step_hours),
        member=None if member is None else int(member),
        notes=tuple(notes),
    )
    return Channels(
        array=array,
        schema=schema,
        time=info,
        source_format=str(dataset.attrs.get("source_format", "")),
        paths=paths,
    )


def open_channels(
    paths: PathsLike,
    *,
    variables: Sequence[str] | None = None,
    levels: Sequence[float] | None = None,
    member: int | None = None,
    step_hours: float | None = None,
    period: str | tuple[Any, Any] | None = None,
    require_regular: bool = True,
    storage_options: Mapping[str, Any] | None = None,
) -> Channels:
    """Open files (see `open_source`) and convert them to canonical channels (see `to_channels`)."""
    dataset = open_source(
        paths, variables=variables, levels=levels, member=member, storage_options=storage_options
    )
    return to_channels(dataset, step_hours=step_hours, period=period, require_regular=require_regular)
