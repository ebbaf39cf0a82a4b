"""File formats: recognise a path by its first bytes (or its Zarr metadata) and open it lazily.

Formats: `netcdf3` (classic and 64-bit offset, read with the netCDF4 library), `netcdf4` (HDF5, read with
h5netcdf, which is safe with dask threads), `zarr2`, `zarr3` (a directory or a `.zarr` path), `grib1`,
`grib2` (through cfgrib, the optional `grib` extra). Zarr stores also open from `s3://`, `gs://` and
`https://` URLs (`remote.py`). Every failure becomes a one-line DataError naming the file.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import xarray as xr

from fno_forecast.data.remote import detect_url_format, is_url, open_zarr_url
from fno_forecast.errors import DataError

Format = Literal["netcdf3", "netcdf4", "zarr2", "zarr3", "grib1", "grib2"]
GRIB_HINT = 'reading GRIB needs the grib extra: pip install "fno-forecast[grib]"'


def detect_format(path: str | Path) -> Format:
    """The format of a file or Zarr store; DataError if it is absent or in no supported format."""
    p = Path(path)
    if not p.exists():
        raise DataError(p, "no such file or directory")
    if p.is_dir():
        if (p / "zarr.json").is_file():
            return "zarr3"
        if any((p / name).is_file() for name in (".zgroup", ".zarray", ".zmetadata")):
            return "zarr2"
        raise DataError(p, "a directory that is not a Zarr store (no zarr.json, .zgroup or .zarray)")
    try:
        with p.open("rb") as handle:
            head = handle.read(16)
    except OSError as error:
        raise DataError(p, f"cannot read: {error.strerror or error}") from None
    if head[:3] == b"CDF" and head[3:4] in (b"\x01", b"\x02", b"\x05"):
        return "netcdf3"
    if head[:8] == b"\x89HDF\r\n\x1a\n":
        return "netcdf4"
    if head[:4] == b"GRIB":
        return "grib2" if head[7:8] == b"\x02" else "grib1"
    if not head:
        raise DataError(p, "empty file (0 bytes)")
    raise DataError(p, "not a supported format (NetCDF3, NetCDF4/HDF5, Zarr v2/v3, GRIB 1/2)")


def _open_grib(path: Path) -> xr.Dataset:
    try:
        import cfgrib  # noqa: F401
    except (ImportError, RuntimeError):
        # cfgrib raises RuntimeError at import when it cannot find the ecCodes library.
        raise DataError(path, GRIB_HINT) from None
    try:
        # indexpath="" keeps cfgrib from writing a .idx file next to (possibly read-only) data.
        return xr.open_dataset(path, engine="cfgrib", backend_kwargs={"indexpath": ""}, decode_timedelta=True)
    except (ValueError, RuntimeError, OSError, KeyError, EOFError) as error:
        if "eccodes" in str(error).lower() or "ecCodes" in str(error):
            raise DataError(path, f"{GRIB_HINT} ({error})") from None
        raise DataError(path, f"cannot read GRIB ({type(error).__name__}: {error})") from None


def open_file(
    path: str | Path, *, storage_options: Mapping[str, Any] | None = None
) -> tuple[xr.Dataset, Format]:
    """Open one file or store lazily (values are read on access) with CF decoding.

    A URL (see `remote.is_url`) opens as a Zarr store through fsspec with `storage_options`.
    """
    if is_url(path):
        return _open_url(str(path), storage_options=storage_options)
    p = Path(path)
    fmt = detect_format(p)
    if fmt.startswith("grib"):
        return _open_grib(p), fmt
    kind = {"netcdf3": "NetCDF3", "netcdf4": "NetCDF4/HDF5", "zarr2": "Zarr v2", "zarr3": "Zarr v3"}[fmt]
    try:
        with warnings.catch_warnings():
            # A _FillValue of NaN on a float variable is harmless; xarray warns about it on every open.
            warnings.filterwarnings("ignore", category=RuntimeWarning, module="xarray")
            warnings.filterwarnings("ignore", category=xr.SerializationWarning)
            warnings.filterwarnings("ignore", message="Failed to open Zarr store with consolidated")
            if fmt.startswith("zarr"):
                dataset = _open_zarr(p, version=3 if fmt == "zarr3" else 2)
            else:
                if fmt == "netcdf3":
                    check_netcdf3_size(p)
                engine = "netcdf4" if fmt == "netcdf3" else "h5netcdf"
                dataset = xr.open_dataset(p, engine=engine, decode_timedelta=True)
    except DataError:
        raise
    except (OSError, ValueError, RuntimeError, KeyError, TypeError, IndexError) as error:
        text = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DataError(p, f"corrupt or truncated {kind} file ({text})") from None
    return dataset, fmt


def check_netcdf3_size(path: Path) -> None:
    """DataError when a NetCDF3 file is shorter than its header says its data are (a truncated copy).

    The netCDF library opens such a file and reads the missing part as fill values, so check the size:
    non-record variables plus `numrecs` records must fit in the file.
    """
    import netCDF4

    try:
        with netCDF4.Dataset(path) as nc:
            fixed = records = 0
            numrecs = 0
            for var in nc.variables.values():
                dims = [nc.dimensions[d] for d in var.dimensions]
                size = int(var.dtype.itemsize)
                for dim in dims:
                    if dim.isunlimited():
                        numrecs = len(dim)
                    else:
                        size *= len(dim)
                if any(d.isunlimited() for d in dims):
                    records += size
                else:
                    fixed += size
    except OSError as error:
        raise DataError(path, f"corrupt or truncated NetCDF3 file ({error})") from None
    needed = fixed + numrecs * records
    actual = path.stat().st_size
    if actual < needed:
        raise DataError(
            path, f"corrupt or truncated NetCDF3 file ({actual} bytes, its data need at least {needed})"
        )


def _open_url(url: str, *, storage_options: Mapping[str, Any] | None) -> tuple[xr.Dataset, Format]:
    fmt = detect_url_format(url, storage_options=storage_options)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=RuntimeWarning, module="xarray")
            warnings.filterwarnings("ignore", category=xr.SerializationWarning)
            dataset = open_zarr_url(url, version=3 if fmt == "zarr3" else 2, storage_options=storage_options)
    except DataError:
        raise
    except (OSError, ValueError, RuntimeError, KeyError, TypeError, IndexError) as error:
        text = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DataError(url, f"cannot read the Zarr store ({text})") from None
    return dataset, fmt


def _open_zarr(path: Path, *, version: int) -> xr.Dataset:
    consolidated = (path / ".zmetadata").is_file() if version == 2 else None
    return xr.open_zarr(path, consolidated=consolidated, chunks=None, decode_timedelta=True)
