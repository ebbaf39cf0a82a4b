"""Open gridded sources: one file, several files, or a glob, concatenated along time.

`open_source` returns a lazy `xr.Dataset` with dims `time`, `lat`, `lon` (and `level`), dask-backed in
chunks of whole time steps, so data larger than memory works. It carries what it decided in
`dataset.attrs`: `source_format`, `source_paths` (newline-separated), `notes` (newline-separated), and
`member` (the ensemble member used, where there is an ensemble).
"""

from __future__ import annotations

import glob
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from fno_forecast.data.coords import choose_member, drop_singletons, normalize_coords
from fno_forecast.data.formats import open_file
from fno_forecast.data.remote import is_url
from fno_forecast.errors import DataError

PathsLike = str | Path | Sequence[str | Path]
CHUNK_BYTES = 64 * 2**20
MIN_CHUNK_BYTES = 2 * 2**20


def expand_paths(paths: PathsLike) -> list[Path | str]:
    """Paths as given, with glob patterns expanded (sorted); DataError for a pattern matching nothing.

    URLs (`s3://`, `gs://`, `https://`, see `remote.is_url`) stay strings and are not globbed.
    """
    items = [paths] if isinstance(paths, (str, Path)) else list(paths)
    if not items:
        raise DataError(None, "no data paths given")
    out: list[Path | str] = []
    for item in items:
        text = str(item)
        if is_url(item):
            out.append(text)
        elif any(ch in text for ch in "*?[") and not Path(text).exists():
            matches = sorted(glob.glob(text))
            if not matches:
                raise DataError(text, "no such file or directory (the pattern matches nothing)")
            out.extend(Path(m) for m in matches)
        else:
            out.append(Path(text))
    return out


def _select(
    dataset: xr.Dataset, *, variables: Sequence[str] | None, levels: Sequence[float] | None, path: str
) -> xr.Dataset:
    gridded = [str(n) for n, v in dataset.data_vars.items() if {"lat", "lon"} <= set(v.dims)]
    if not gridded:
        raise DataError(path, "no variable on the lat/lon grid")
    if variables:
        absent = [v for v in variables if v not in gridded]
        if absent:
            raise DataError(
                path, f"variable(s) {', '.join(absent)} absent; variables present: {', '.join(gridded)}"
            )
        gridded = list(variables)
    dataset = dataset[gridded]
    if levels:
        if "level" not in dataset.dims:
            raise DataError(path, f"level(s) {list(levels)} asked for but the data has no vertical levels")
        present = [float(v) for v in dataset["level"].values]
        absent = [lv for lv in levels if not any(abs(float(lv) - p) < 1e-6 for p in present)]
        if absent:
            shown = ", ".join(_level_text(p) for p in present)
            raise DataError(
                path, f"level(s) {', '.join(_level_text(a) for a in absent)} absent; levels present: {shown}"
            )
        dataset = dataset.sel(level=[float(lv) for lv in levels], method="nearest")
    elif "level" in dataset.dims:
        dataset = dataset.sortby("level")
    return dataset


def _level_text(value: float) -> str:
    value = float(value)
    return str(int(value)) if value.is_integer() else f"{value:g}"


def _chunked(dataset: xr.Dataset) -> xr.Dataset:
    """Dask chunks of whole time steps (values stay on disk until computed).

    About CHUNK_BYTES each, unless the storage is chunked in time (Zarr, chunked NetCDF4): then a whole
    number of storage chunks of at least MIN_CHUNK_BYTES, so that reading a training window fetches the
    few storage chunks around it, not CHUNK_BYTES of neighbours (what makes streaming a store larger than
    memory possible).
    """
    per_step = sum(
        int(np.prod([v.sizes[d] for d in v.dims if d != "time"])) * 4 for v in dataset.data_vars.values()
    )
    steps = max(1, CHUNK_BYTES // max(per_step, 1))
    stored = _storage_time_chunk(dataset)
    if stored is not None and stored * per_step <= CHUNK_BYTES:
        steps = stored * max(1, -(-MIN_CHUNK_BYTES // (stored * per_step)))
    steps = min(dataset.sizes["time"], steps)
    return dataset.chunk({d: (steps if d == "time" else -1) for d in dataset.dims})


def _storage_time_chunk(dataset: xr.Dataset) -> int | None:
    """The largest time chunk of the variables' storage, or None when the storage is not chunked in time."""
    found = []
    for var in dataset.data_vars.values():
        preferred = var.encoding.get("preferred_chunks") or {}
        if "time" in preferred and preferred["time"] < var.sizes.get("time", 0):
            found.append(int(preferred["time"]))
    return max(found) if found else None


def _open_one(
    path: Path | str,
    *,
    variables: Sequence[str] | None,
    levels: Sequence[float] | None,
    member: int | None,
    notes: list[str],
    storage_options: Mapping[str, Any] | None,
) -> tuple[xr.Dataset, str, int | None]:
    dataset, fmt = open_file(path, storage_options=storage_options)
    dataset = normalize_coords(dataset, path=str(path), notes=notes)
    dataset, chosen = choose_member(dataset, member=member, path=str(path), notes=notes)
    dataset = drop_singletons(dataset)
    dataset = _select(dataset, variables=variables, levels=levels, path=str(path))
    return dataset, fmt, chosen


def _check_same_grid(
    first: xr.Dataset, other: xr.Dataset, *, first_path: Path | str, path: Path | str
) -> None:
    for coord in ("lat", "lon", "level"):
        a = first[coord].values if coord in first.coords else None
        b = other[coord].values if coord in other.coords else None
        if (a is None) != (b is None) or (
            a is not None and (a.shape != b.shape or not np.allclose(a.astype(float), b.astype(float)))
        ):
            describe = "levels" if coord == "level" else "grids"
            raise DataError(path, f"{describe} differ from {first_path} ({coord}: {_span(b)} vs {_span(a)})")
    if set(first.data_vars) != set(other.data_vars):
        raise DataError(
            path, f"variables {sorted(other.data_vars)} differ from {first_path}'s {sorted(first.data_vars)}"
        )


def _span(values: np.ndarray | None) -> str:
    if values is None:
        return "none"
    return f"{values.size} points {float(values[0]):g}..{float(values[-1]):g}"


def open_source(
    paths: PathsLike,
    *,
    variables: Sequence[str] | None = None,
    levels: Sequence[float] | None = None,
    member: int | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> xr.Dataset:
    """Open one or more files (or globs) as one lazy dataset with dims `time`, `lat`, `lon` (+ `level`).

    Files are concatenated along time in time order and must share grid, levels and variables. `member`
    picks an ensemble member by its number (default: the first; said in `attrs["notes"]`). Zarr stores
    at URLs open through fsspec with `storage_options` (and fsspec's environment, see `remote.py`).
    """
    files = expand_paths(paths)
    notes: list[str] = []
    parts: list[xr.Dataset] = []
    formats: list[str] = []
    chosen: int | None = None
    for path in files:
        dataset, fmt, chosen = _open_one(
            path,
            variables=variables,
            levels=levels,
            member=member,
            notes=notes,
            storage_options=storage_options,
        )
        if parts:
            _check_same_grid(parts[0], dataset, first_path=files[0], path=path)
        parts.append(dataset)
        formats.append(fmt)
    if len(parts) == 1:
        combined = parts[0]
    else:
        order = np.argsort([times_key(p) for p in parts], kind="stable")
        combined = xr.concat(
            [parts[i] for i in order], dim="time", data_vars="all", coords="minimal", join="exact"
        )
        times = combined["time"].values
        if np.unique(times).size != times.size:
            raise DataError(files[0], "files overlap in time (the same time appears in more than one file)")
    combined = _chunked(combined)
    combined.attrs = {
        "source_format": formats[0] if len(set(formats)) == 1 else "+".join(sorted(set(formats))),
        "source_paths": "\n".join(str(p) for p in files),
        "notes": "\n".join(dict.fromkeys(notes)),
    }
    if chosen is not None:
        combined.attrs["member"] = chosen
    return combined


def times_key(dataset: xr.Dataset) -> float:
    """Sort key of a dataset: hours of its first time."""
    from fno_forecast.data.timeaxis import times_to_hours

    return float(times_to_hours(dataset["time"].values[:1])[0])
