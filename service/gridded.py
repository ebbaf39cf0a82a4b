"""Gridded outputs of a forecast resource: NetCDF / zipped Zarr downloads, PNG maps, NDJSON lines.

Downloads are the library's CF files (`fno_forecast.output.write_forecast`), subset to the variables and
bounding box the forecast resource asked for. Everything here is blocking: routes call it in a thread.
"""

from __future__ import annotations

import io
import json
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from fno_forecast.data.grid import wrap_longitude
from fno_forecast.data.schema import DataSchema
from fno_forecast.data.timeaxis import format_time
from service.engine import RolloutData
from service.om_variables import KELVIN
from service.store import NETCDF_LOCK


@dataclass(frozen=True)
class BBox:
    """A latitude/longitude box; longitudes in any convention, `west` may exceed `east` across 180."""

    south: float
    west: float
    north: float
    east: float

    def lat_mask(self, lat: np.ndarray) -> np.ndarray:
        return (lat >= self.south) & (lat <= self.north)

    def lon_mask(self, lon: np.ndarray) -> np.ndarray:
        """Longitudes from `west` eastward to `east` (all of them when `east` is `west` plus 360)."""
        width = float(wrap_longitude(self.east, start=self.west)) - self.west
        if width == 0.0 and self.east != self.west:
            width = 360.0
        return wrap_longitude(np.asarray(lon), start=self.west) - self.west <= width + 1e-9

    def as_tuple(self) -> tuple[float, float, float, float]:
        return (self.south, self.west, self.north, self.east)


def subset_dataset(
    dataset: xr.Dataset, channels: tuple[str, ...], bbox: BBox | None, *, schema: DataSchema
) -> xr.Dataset:
    """The library's forecast dataset restricted to `channels` (`z500` is `z` at level 500) and `bbox`."""
    chosen = [c for c in schema.channels if c.name in channels]
    names = list(dict.fromkeys(c.variable for c in chosen if c.variable in dataset.data_vars))
    names += [c.name for c in chosen if c.variable not in dataset.data_vars and c.name in dataset.data_vars]
    dataset = dataset[names]
    levels = sorted({c.level for c in chosen if c.level is not None})
    if levels and "level" in dataset.dims:
        everything = {c.level for c in schema.channels if c.level is not None}
        if set(levels) != everything:
            dataset = dataset.sel(level=levels, method="nearest")
    if bbox is not None:
        dataset = dataset.isel(
            lat=np.flatnonzero(bbox.lat_mask(dataset["lat"].values)),
            lon=np.flatnonzero(bbox.lon_mask(dataset["lon"].values)),
        )
    return dataset


def netcdf_bytes(path: Path, variables: tuple[str, ...], bbox: BBox | None, *, schema: DataSchema) -> bytes:
    from fno_forecast.output import write_forecast

    with NETCDF_LOCK, xr.open_dataset(path) as stored, tempfile.TemporaryDirectory() as tmp:
        target = write_forecast(
            subset_dataset(stored.load(), variables, bbox, schema=schema), Path(tmp) / "forecast.nc"
        )
        return target.read_bytes()


def zarr_zip_bytes(path: Path, variables: tuple[str, ...], bbox: BBox | None, *, schema: DataSchema) -> bytes:
    """The Zarr store of the subset, zipped (stored paths relative to the store root)."""
    from fno_forecast.output import write_forecast

    buffer = io.BytesIO()
    with NETCDF_LOCK, xr.open_dataset(path) as stored, tempfile.TemporaryDirectory() as tmp:
        store = write_forecast(
            subset_dataset(stored.load(), variables, bbox, schema=schema), Path(tmp) / "forecast.zarr"
        )
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
            for file in sorted(store.rglob("*")):
                if file.is_file():
                    archive.write(file, file.relative_to(store).as_posix())
    return buffer.getvalue()


def map_png(
    data: RolloutData, *, variable: str, lead_index: int, bbox: BBox | None, celsius: bool = False
) -> tuple[bytes, dict[str, str]]:
    """A PNG map of one variable at one lead time, with a colour bar labelled with its units (a channel in
    kelvin in °C when `celsius`, the unit a person reads).

    Also returns the plot's geometry as headers, so a page can turn a click into a location:
    `X-Map-Extent: lon_min,lon_max,lat_min,lat_max` (the axes' limits) and `X-Plot-Box: left,top,right,bottom`
    (the axes' box in image pixels from the top left).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    channel = data.channel_index(variable)
    field = data.values[lead_index, channel]
    lat, lon = data.lat, data.lon
    if bbox is not None:
        rows, cols = np.flatnonzero(bbox.lat_mask(lat)), np.flatnonzero(bbox.lon_mask(lon))
        field, lat, lon = field[np.ix_(rows, cols)], lat[rows], lon[cols]
    units = data.units[channel]
    if celsius and units.lower().replace(" ", "") in KELVIN:
        field, units = field - 273.15, "°C"
    figure = Figure(figsize=(7, 4.2), dpi=100)
    axes = figure.add_subplot()
    mesh = axes.pcolormesh(lon, lat, field, shading="nearest", cmap="viridis")
    colorbar = figure.colorbar(mesh, ax=axes)
    colorbar.set_label(f"{variable} ({units})")
    valid = data.valid_times[lead_index]
    axes.set_title(
        f"{data.key.model_id}: {variable} +{data.lead_hours[lead_index]:g} h (valid {valid} UTC)", fontsize=9
    )
    axes.set_xlabel("longitude (degrees east)")
    axes.set_ylabel("latitude (degrees north)")
    out = io.BytesIO()
    figure.savefig(out, format="png")
    _, height = figure.canvas.get_width_height()
    box = axes.get_window_extent()
    extent = (*axes.get_xlim(), *axes.get_ylim())
    geometry = {
        "X-Map-Extent": ",".join(f"{v:.4f}" for v in extent),
        "X-Plot-Box": ",".join(f"{v:.1f}" for v in (box.x0, height - box.y1, box.x1, height - box.y0)),
    }
    return out.getvalue(), geometry


def stream_line(
    *,
    lead_hours: float,
    valid_time: np.datetime64,
    fields: np.ndarray,
    data_channels: tuple[str, ...],
    variables: tuple[str, ...],
    lat: np.ndarray,
    lon: np.ndarray,
    bbox: BBox | None,
) -> bytes:
    """One NDJSON line: a lead time's fields `(channel, lat, lon)` for the requested variables and box."""
    rows = np.arange(len(lat)) if bbox is None else np.flatnonzero(bbox.lat_mask(lat))
    cols = np.arange(len(lon)) if bbox is None else np.flatnonzero(bbox.lon_mask(lon))
    values: dict[str, Any] = {}
    for name in variables:
        grid = fields[data_channels.index(name)][np.ix_(rows, cols)]
        values[name] = np.round(grid.astype(np.float64), 3).tolist()
    line = {
        "lead_hours": float(lead_hours),
        "valid_time": format_time(valid_time),
        "lat": lat[rows].tolist(),
        "lon": lon[cols].tolist(),
        "values": values,
    }
    return json.dumps(line, separators=(",", ":")).encode() + b"\n"
