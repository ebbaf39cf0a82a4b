"""Zarr stores in object storage: `s3://`, `gs://` (`gcs://`), `az://` (`abfs://`), `http(s)://` URLs.

They are read through fsspec, so every option of its filesystems works, from the arguments or from the
environment, which is how the CLI takes them:

- fsspec's own configuration: `FSSPEC_<PROTOCOL>_<OPTION>` (e.g. `FSSPEC_S3_ENDPOINT_URL`,
  `FSSPEC_S3_ANON=true`, `FSSPEC_GCS_TOKEN=anon`) or `FSSPEC_<PROTOCOL>` holding a JSON object;
- each service's standard variables: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_ENDPOINT_URL` (or
  `AWS_ENDPOINT_URL_S3`), `AWS_PROFILE` for S3 and S3-compatible servers (read by botocore);
  `GOOGLE_APPLICATION_CREDENTIALS` for Google Cloud Storage, public buckets being readable without.

`s3://` needs `s3fs`, `gs://` needs `gcsfs` (the `cloud` extra: `pip install "fno-forecast[cloud]"`);
`http(s)://` needs only aiohttp. Only Zarr stores are read from URLs: NetCDF and GRIB need seekable
local files.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import xarray as xr

from fno_forecast.errors import DataError

SCHEMES = ("s3", "gs", "gcs", "az", "abfs", "http", "https")
PACKAGES = {"s3": "s3fs", "gs": "gcsfs", "gcs": "gcsfs", "az": "adlfs", "abfs": "adlfs"}


def is_url(path: object) -> bool:
    """Whether `path` is an object-storage or web URL (as a string: `Path` would fold its `//`)."""
    if not isinstance(path, str):
        return False
    scheme, sep, _ = path.partition("://")
    return bool(sep) and scheme.lower() in SCHEMES


def _filesystem(url: str, storage_options: Mapping[str, Any] | None) -> Any:
    import fsspec

    scheme = url.partition("://")[0].lower()
    try:
        return fsspec.filesystem(scheme, **dict(storage_options or {}))
    except ImportError:
        package = PACKAGES.get(scheme, "aiohttp")
        raise DataError(
            url, f'reading {scheme}:// needs {package}: pip install "fno-forecast[cloud]"'
        ) from None
    except (ValueError, TypeError) as error:
        raise DataError(url, f"storage options for {scheme}:// rejected ({error})") from None


def detect_url_format(
    url: str, *, storage_options: Mapping[str, Any] | None = None
) -> Literal["zarr2", "zarr3"]:
    """`zarr3` or `zarr2` for a Zarr store at `url` (by its metadata files); DataError otherwise."""
    fs = _filesystem(url, storage_options)
    root = url.rstrip("/")
    try:
        if fs.exists(f"{root}/zarr.json"):
            return "zarr3"
        if any(fs.exists(f"{root}/{name}") for name in (".zmetadata", ".zgroup", ".zarray")):
            return "zarr2"
        present = fs.exists(root)
    except PermissionError:
        raise DataError(url, "access denied (check the credentials: AWS_* or FSSPEC_* variables)") from None
    except (OSError, ValueError) as error:
        text = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DataError(url, f"cannot reach the store ({text})") from None
    if not present:
        raise DataError(url, "no such store (nothing at this URL)")
    raise DataError(url, "not a Zarr store (no zarr.json, .zmetadata, .zgroup or .zarray); URLs must be Zarr")


def open_zarr_url(url: str, *, version: int, storage_options: Mapping[str, Any] | None = None) -> xr.Dataset:
    """Open a Zarr store at `url` lazily (chunks are fetched when computed)."""
    _filesystem(url, storage_options)  # the clear error when the filesystem's package is missing
    consolidated: bool | None = None
    if version == 2:
        fs = _filesystem(url, storage_options)
        consolidated = bool(fs.exists(f"{url.rstrip('/')}/.zmetadata"))
    return xr.open_zarr(
        url,
        consolidated=consolidated,
        chunks=None,
        decode_timedelta=True,
        storage_options=dict(storage_options or {}),
    )
