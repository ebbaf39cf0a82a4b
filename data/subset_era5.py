"""Cut an ERA5 subset out of WeatherBench2's analysis-ready Zarr stores into a local Zarr.

WeatherBench2 publishes ERA5 on regular grids as cloud Zarr stores (dims `time, level, latitude, longitude`),
for example the 5.625-degree store (64 x 32, 6-hourly, 1959-2023), a few GB for the variables below:

    gs://weatherbench2/datasets/era5/1959-2023_01_10-6h-64x32_equiangular_conservative.zarr

    pip install gcsfs   # reading gs:// needs it; anonymous access
    python data/subset_era5.py \
        --source gs://weatherbench2/datasets/era5/1959-2023_01_10-6h-64x32_equiangular_conservative.zarr \
        --variables geopotential temperature 2m_temperature --levels 500 850 \
        --period 2015-01-01/2018-12-31 --out era5_5p625.zarr
    fno-forecast inspect era5_5p625.zarr
    fno-forecast train --data era5_5p625.zarr --out runs/era5 --max-minutes 30

Sizes: one 64 x 32 field is 8 kB, so 3 variables at 2 levels, 4 years at 6 h take about 6 x 5844 x 8 kB = 0.3 GB.
The 1.5-degree store (240 x 121) is 14 times that; the 0.25-degree one (1440 x 721) 500 times.
`--source` can be any Zarr store with that layout, a local folder too (that is how the tests run it).
The output is written to a temporary folder and renamed into place, so a failed run leaves nothing half-written.
ERA5: "Contains modified Copernicus Climate Change Service information".
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

import xarray as xr


def open_store(source: str) -> xr.Dataset:
    storage_options = {"token": "anon"} if source.startswith("gs://") else None
    return xr.open_zarr(source, storage_options=storage_options, chunks={})


def select(
    dataset: xr.Dataset, *, variables: list[str], levels: list[int] | None, period: tuple[str, str] | None
) -> xr.Dataset:
    missing = [v for v in variables if v not in dataset.data_vars]
    if missing:
        raise ValueError(f"--variables: {missing} not in the store; it has {sorted(dataset.data_vars)}")
    subset = dataset[variables]
    if levels and "level" in subset.dims:
        absent = [lv for lv in levels if lv not in subset["level"].values]
        if absent:
            raise ValueError(f"--levels: {absent} not in the store; it has {subset['level'].values.tolist()}")
        subset = subset.sel(level=levels)
    if period is not None:
        subset = subset.sel(time=slice(*period))
        if subset.sizes["time"] == 0:
            raise ValueError(f"--period: no time steps between {period[0]} and {period[1]}")
    return subset


def write_atomic(dataset: xr.Dataset, out: Path) -> Path:
    temp = out.with_name(out.name + ".tmp")
    if temp.exists():
        shutil.rmtree(temp)
    for name in dataset.variables:
        dataset[name].encoding.pop("chunks", None)
        dataset[name].encoding.pop("preferred_chunks", None)
    dataset.chunk({"time": 64}).to_zarr(temp, mode="w", consolidated=True, zarr_format=2)
    if out.exists():
        shutil.rmtree(out)
    os.replace(temp, out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", required=True, help="Zarr store: gs://..., a URL or a local folder")
    parser.add_argument("--variables", nargs="+", required=True)
    parser.add_argument("--levels", nargs="*", type=int, default=None, help="pressure levels in hPa")
    parser.add_argument("--period", default=None, help="START/END ISO dates, both ends included")
    parser.add_argument("--out", type=Path, required=True, help="output Zarr folder")
    args = parser.parse_args(argv)
    period = None
    if args.period:
        start, sep, end = args.period.partition("/")
        if not sep:
            print("subset_era5: error: --period must be START/END", file=sys.stderr)
            return 2
        period = (start, f"{end}T23:59:59")
    try:
        dataset = open_store(args.source)
        subset = select(dataset, variables=args.variables, levels=args.levels, period=period)
        path = write_atomic(subset, args.out)
    except (OSError, ValueError, KeyError) as error:
        print(f"subset_era5: error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {path}: {dict(subset.sizes)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
