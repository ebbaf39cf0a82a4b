"""A synthetic global Zarr store of any size, written chunk by chunk (for streaming tests and benchmarks).

Training on decades of ERA5 means a store far larger than memory. This writes one like it without holding
more than a block of time steps in memory: ERA5-like variables on pressure levels (`z`, `t`, `u`, `v` at
250, 500, 850 hPa) and at the surface (`t2m`, `msl`), 14 channels, on a global grid with both poles, 6-hourly,
in Zarr v2 chunks of `--chunk-steps` time steps. The values are travelling planetary waves with annual and
diurnal cycles plus noise, so statistics and models have something to learn; only the size is the point.

    python data/make_big_store.py --gigabytes 3 --out big.zarr          # ~1,850 steps on 121 x 240
    python data/make_big_store.py --gigabytes 40 --out big40.zarr       # larger than most machines' memory

A 121 x 240 step of the 14 channels is 1.6 MB as float32. The store is written to `OUT.tmp` and renamed
into place when complete. Deterministic by `--seed`.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

LEVELS = (250.0, 500.0, 850.0)
UPPER = {
    "z": (5.0e4, 2.0e3, "m2 s-2"),
    "t": (250.0, 10.0, "K"),
    "u": (8.0, 12.0, "m s-1"),
    "v": (0.0, 8.0, "m s-1"),
}
SURFACE = {"t2m": (283.0, 15.0, "K"), "msl": (101_325.0, 1_200.0, "Pa")}


def n_channels() -> int:
    return len(UPPER) * len(LEVELS) + len(SURFACE)


def steps_for(gigabytes: float, *, nlat: int, nlon: int) -> int:
    """Time steps that make a store of about `gigabytes` (float32, uncompressed)."""
    return max(2, int(gigabytes * 1e9 // (n_channels() * nlat * nlon * 4)))


def block(
    start: int, stop: int, *, lat: np.ndarray, lon: np.ndarray, step_hours: float, seed: int
) -> dict[str, np.ndarray]:
    """Values of steps `start..stop-1` for every variable: `(n, level, lat, lon)` or `(n, lat, lon)`."""
    rng = np.random.default_rng([seed, start])
    hours = np.arange(start, stop, dtype=np.float64)[:, None, None] * step_hours
    phi = np.deg2rad(lat)[None, :, None]
    lam = np.deg2rad(lon)[None, None, :]
    annual = np.sin(2 * np.pi * hours / 8766.0) * np.sin(phi)
    diurnal = np.cos(2 * np.pi * hours / 24.0 + lam) * np.cos(phi)
    out: dict[str, np.ndarray] = {}
    for k, (name, (mean, scale, _)) in enumerate({**UPPER, **SURFACE}.items()):
        waves = sum(
            np.cos(phi) ** m * np.cos(m * lam - (2 * np.pi * hours / (24.0 * (3 + 2 * m))) + k) / m
            for m in (1, 2, 3, 5)
        )
        base = waves + 0.6 * annual + 0.3 * diurnal
        if name in UPPER:
            levels = np.asarray(LEVELS)[None, :, None, None] / 1000.0
            noise = rng.standard_normal((stop - start, len(LEVELS), lat.size, lon.size), dtype=np.float32)
            values = mean * (0.5 + levels) + scale * (base[:, None] * levels + 0.1 * noise)
        else:
            noise = rng.standard_normal((stop - start, lat.size, lon.size), dtype=np.float32)
            values = mean + scale * (base + 0.1 * noise)
        out[name] = values.astype(np.float32)
    return out


def template(
    *, steps: int, nlat: int, nlon: int, step_hours: float, start: str, chunk_steps: int
) -> xr.Dataset:
    """The store's coordinates and (lazy, all-zero) variables, chunked as they will be written."""
    import dask.array as da

    lat = np.linspace(90.0, -90.0, nlat)
    lon = np.arange(nlon) * (360.0 / nlon)
    time = pd.Timestamp(start) + pd.to_timedelta(np.arange(steps) * step_hours, unit="h")
    data = {}
    for name, (_, _, units) in UPPER.items():
        shape, chunks = (steps, len(LEVELS), nlat, nlon), (chunk_steps, len(LEVELS), nlat, nlon)
        data[name] = (("time", "level", "lat", "lon"), da.zeros(shape, chunks=chunks, dtype=np.float32))
        data[name] += ({"units": units},)
    for name, (_, _, units) in SURFACE.items():
        shape, chunks = (steps, nlat, nlon), (chunk_steps, nlat, nlon)
        data[name] = (
            ("time", "lat", "lon"),
            da.zeros(shape, chunks=chunks, dtype=np.float32),
            {"units": units},
        )
    coords = {
        "time": ("time", time, {"standard_name": "time"}),
        "level": ("level", np.asarray(LEVELS), {"units": "hPa", "standard_name": "air_pressure"}),
        "lat": ("lat", lat, {"units": "degrees_north", "standard_name": "latitude"}),
        "lon": ("lon", lon, {"units": "degrees_east", "standard_name": "longitude"}),
    }
    return xr.Dataset(data, coords=coords)


def write_store(
    out: Path,
    *,
    steps: int,
    nlat: int = 121,
    nlon: int = 240,
    step_hours: float = 6.0,
    start: str = "1990-01-01",
    chunk_steps: int = 8,
    seed: int = 0,
    progress: bool = False,
) -> Path:
    """Write the store block by block (one block of `chunk_steps` steps in memory at a time)."""
    ds = template(
        steps=steps, nlat=nlat, nlon=nlon, step_hours=step_hours, start=start, chunk_steps=chunk_steps
    )
    temp = out.with_name(out.name + ".tmp")
    if temp.exists():
        shutil.rmtree(temp)
    ds.to_zarr(temp, mode="w", compute=False, zarr_format=2, consolidated=True)
    lat, lon = ds["lat"].values, ds["lon"].values
    n_blocks = math.ceil(steps / chunk_steps)
    for b in range(n_blocks):
        lo, hi = b * chunk_steps, min(steps, (b + 1) * chunk_steps)
        values = block(lo, hi, lat=lat, lon=lon, step_hours=step_hours, seed=seed)
        part = xr.Dataset({name: (ds[name].dims, v) for name, v in values.items()})
        part.to_zarr(temp, region={"time": slice(lo, hi)}, zarr_format=2)
        if progress and (b % 50 == 0 or b == n_blocks - 1):
            print(f"  {hi}/{steps} steps", file=sys.stderr)
    if out.exists():
        shutil.rmtree(out)
    os.replace(temp, out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="output Zarr folder")
    size = parser.add_mutually_exclusive_group(required=True)
    size.add_argument("--gigabytes", type=float, help="about this size (float32, before compression)")
    size.add_argument("--steps", type=int, help="this many 6-hourly time steps")
    parser.add_argument("--nlat", type=int, default=121)
    parser.add_argument("--nlon", type=int, default=240)
    parser.add_argument("--chunk-steps", type=int, default=8, help="time steps per Zarr chunk")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.nlat < 3 or args.nlon < 4 or args.chunk_steps < 1 or (args.gigabytes or 1) <= 0:
        print(
            "make_big_store: error: --nlat >= 3, --nlon >= 4, --chunk-steps >= 1, --gigabytes > 0",
            file=sys.stderr,
        )
        return 2
    steps = args.steps or steps_for(args.gigabytes, nlat=args.nlat, nlon=args.nlon)
    write_store(
        args.out,
        steps=steps,
        nlat=args.nlat,
        nlon=args.nlon,
        chunk_steps=args.chunk_steps,
        seed=args.seed,
        progress=True,
    )
    gb = steps * n_channels() * args.nlat * args.nlon * 4 / 1e9
    print(
        f"wrote {args.out}: {steps} steps x {n_channels()} channels x {args.nlat} x {args.nlon} ({gb:.2f} GB float32)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
