"""Download NCEP/NCAR Reanalysis 1 near-surface air temperature and cut the bundled model's region.

The bundled model learned from NOAA PSL's `air.sig995.YYYY.nc` (air temperature at sigma 0.995, 2.5 degree,
6-hourly), cut to lat 75..15 N and lon 200..330 E: the same values as xarray's `air_temperature` tutorial data.

    python data/fetch_ncep.py --years 2013 2014 --out ncep_air_2013-2014.nc
    python data/fetch_ncep.py --years 1990-2020 --region global --out ncep_air_global.nc

`--source` is the folder or URL prefix that holds the yearly files (default: NOAA PSL); a local folder works the
same, which is how the tests run this without internet. Downloads go to `--cache` and are reused; the output is
written atomically. Acknowledge NOAA PSL when you publish results (US public data).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import urllib.request
from pathlib import Path

import xarray as xr

PSL_SOURCE = "https://downloads.psl.noaa.gov/Datasets/ncep.reanalysis/surface"
REGIONS = {
    "tutorial": {"lat": (75.0, 15.0), "lon": (200.0, 330.0)},
    "global": None,
}


def parse_years(items: list[str]) -> list[int]:
    years: list[int] = []
    for item in items:
        if "-" in item:
            first, last = (int(v) for v in item.split("-", 1))
            years.extend(range(first, last + 1))
        else:
            years.append(int(item))
    if not years:
        raise ValueError("--years: give at least one year, e.g. 2013 2014 or 2013-2014")
    return sorted(set(years))


def fetch(source: str, name: str, cache: Path) -> Path:
    """Copy `source/name` into the cache (from a URL or a local folder) unless it is there already."""
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / name
    if target.exists():
        return target
    partial = target.with_suffix(target.suffix + ".part")
    if "://" in source:
        with (
            urllib.request.urlopen(f"{source.rstrip('/')}/{name}", timeout=120) as response,
            open(partial, "wb") as out,
        ):
            shutil.copyfileobj(response, out)
    else:
        shutil.copyfile(Path(source) / name, partial)
    os.replace(partial, target)
    return target


def cut(dataset: xr.Dataset, region: str) -> xr.Dataset:
    bounds = REGIONS[region]
    if bounds is None:
        return dataset
    lat_hi, lat_lo = bounds["lat"]
    lon_lo, lon_hi = bounds["lon"]
    return dataset.sel(lat=slice(lat_hi, lat_lo), lon=slice(lon_lo, lon_hi))


def build(*, years: list[int], source: str, cache: Path, region: str, out: Path) -> Path:
    files = [fetch(source, f"air.sig995.{year}.nc", cache) for year in years]
    with xr.open_mfdataset(files, combine="by_coords", engine="netcdf4", parallel=False) as dataset:
        subset = cut(dataset[["air"]], region).load()
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=out.parent, suffix=".nc.tmp")
    os.close(handle)
    subset.to_netcdf(temp_name)
    os.replace(temp_name, out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--years", nargs="+", required=True, help="years, e.g. 2013 2014 or 1990-2020")
    parser.add_argument("--out", type=Path, required=True, help="output NetCDF file")
    parser.add_argument("--region", choices=sorted(REGIONS), default="tutorial")
    parser.add_argument("--source", default=PSL_SOURCE, help="folder or URL prefix of the yearly files")
    parser.add_argument("--cache", type=Path, default=Path(".cache/ncep"), help="download cache folder")
    args = parser.parse_args(argv)
    try:
        path = build(
            years=parse_years(args.years),
            source=args.source,
            cache=args.cache,
            region=args.region,
            out=args.out,
        )
    except (OSError, ValueError) as error:
        print(f"fetch_ncep: error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
