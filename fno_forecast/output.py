"""Atomic writers for forecasts (CF NetCDF or Zarr) and for small files (text, bytes).

A reader never sees a half-written file: everything goes to a temporary file (or folder, for Zarr) in
the destination's folder, is flushed and fsynced, then moved over the destination with `os.replace`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Literal

import numpy as np
import xarray as xr

from fno_forecast.errors import ConfigError

OutputFormat = Literal["netcdf", "zarr"]


def output_format(path: str | Path) -> OutputFormat:
    """The format a path's suffix asks for: `.nc` -> NetCDF, `.zarr` -> Zarr."""
    suffix = Path(path).suffix.lower()
    if suffix in (".nc", ".nc4", ".netcdf"):
        return "netcdf"
    if suffix == ".zarr":
        return "zarr"
    raise ConfigError(f"--out {path}: expected a file name ending in .nc or .zarr")


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Write `data` to `path` through a temporary file in the same folder, fsync, `os.replace`.

    The file gets mode 0644 (mkstemp makes 0600), like any normal file; returns the path.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(target.parent)
    return target


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write `text` (UTF-8) to `path` atomically; returns the path."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def _encoding(dataset: xr.Dataset, fmt: OutputFormat) -> dict[str, dict]:
    """float32 data, compressed in NetCDF; CF time units on time-like coordinates."""
    encoding: dict[str, dict] = {}
    for name, variable in dataset.data_vars.items():
        entry: dict = {"dtype": "float32"}
        if fmt == "netcdf":
            entry.update(zlib=True, complevel=4)
        if np.issubdtype(variable.dtype, np.floating):
            entry["_FillValue"] = np.float32(np.nan)
        encoding[str(name)] = entry
    for name, coord in dataset.coords.items():
        if np.issubdtype(coord.dtype, np.datetime64):
            encoding[str(name)] = {
                "units": "hours since 1970-01-01 00:00:00",
                "calendar": "proleptic_gregorian",
                "dtype": "float64",
            }
        elif np.issubdtype(coord.dtype, np.timedelta64):
            encoding[str(name)] = {"units": "hours", "dtype": "float64"}
    return encoding


def write_forecast(dataset: xr.Dataset, path: str | Path) -> Path:
    """Write a forecast dataset to `path` (`.nc` or `.zarr`) atomically; returns the path.

    An existing file or store at `path` is replaced only once the new one is complete.
    """
    target = Path(path)
    fmt = output_format(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    encoding = _encoding(dataset, fmt)
    if fmt == "netcdf":
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            dataset.to_netcdf(tmp, engine="netcdf4", encoding=encoding)
            _fsync_file(tmp)
            os.chmod(tmp, 0o644)  # mkstemp makes 0600; the forecast is a normal file
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    else:
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
        old = target.parent / f".{target.name}.old"
        try:
            dataset.to_zarr(tmp, mode="w", encoding=encoding, consolidated=True, zarr_format=2)
            for file in tmp.rglob("*"):
                if file.is_file():
                    _fsync_file(file)
            if target.exists():
                os.replace(target, old)
            os.replace(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        finally:
            shutil.rmtree(old, ignore_errors=True)
    _fsync_dir(target.parent)
    return target
