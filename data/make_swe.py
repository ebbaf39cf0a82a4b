"""Global shallow-water data: layer height and winds from torch-harmonics' spectral solver.

The shallow-water equations on the rotating sphere are the testbed of the SFNO paper (Bonev et al., 2023);
torch-harmonics ships their solver (`torch_harmonics.examples.ShallowWaterSolver`: spherical-harmonic
transforms, third-order Adams-Bashforth, hyperdiffusion on vorticity and divergence). This script runs it
from random initial states and writes snapshots as a CF NetCDF or Zarr file that `fno-forecast inspect`
and `fno-forecast train` read like any reanalysis:

    python data/make_swe.py --out swe.nc                                  # the default, ~3 min on 2 cores
    python data/make_swe.py --regime nonlinear --nlat 65 --out swe_nl.zarr
    fno-forecast inspect swe.nc

Layout: `--trajectories` independent runs, each from its own random state (seeded by `--seed` and its
number), spun up for `--spinup-hours` (not written), then `--steps` snapshots every `--step-hours`;
consecutive trajectories are separated by `--gap-steps` missing steps, so no training window spans two.
Variables: `h` (layer height, m), `u` and `v` (eastward and northward velocity, m/s) on an equiangular
grid with both poles (`--nlat` points from 90 to -90, `--nlon` from 0 east). The global mean of `h` is
`--mean-height` and stays so (the solver conserves mass exactly).

Amplitude: the solver's random state (white in spherical harmonics up to its truncation) is rescaled to a
height perturbation of `100 * A` m RMS and a wind of `10 * A` m/s RMS (area means), A = `--amplitude`.
`--regime small` (A = 0.1: 10 m, 1 m/s) evolves almost linearly (gravity and Rossby waves);
`--regime nonlinear` (A = 2: 200 m, 20 m/s, jets and eddies like the mid-latitudes) does not.
The same arguments give the same file (one process, the same machine).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import xarray as xr

REGIMES = {"small": 0.1, "nonlinear": 2.0}
HEIGHT_RMS_PER_AMPLITUDE = 100.0  # m
WIND_RMS_PER_AMPLITUDE = 10.0  # m/s
# Adams-Bashforth 3 is stable for oscillations up to about 0.72 rad per step; keep the fastest gravity wave
# the truncation resolves below this many radians per step.
MAX_PHASE_PER_STEP = 0.4


def solver_dt(*, step_seconds: float, lmax: int, mean_height: float, radius: float, gravity: float) -> float:
    """The longest solver step that divides the snapshot step and keeps the fastest wave stable."""
    fastest = math.sqrt(gravity * mean_height) * math.sqrt(lmax * (lmax + 1)) / radius
    substeps = max(1, math.ceil(step_seconds * fastest / MAX_PHASE_PER_STEP))
    return step_seconds / substeps


def build_solver(*, nlat: int, nlon: int, step_hours: float, mean_height: float) -> torch.nn.Module:
    """torch-harmonics' solver on an equiangular grid with poles, truncated at nlat/3 (no aliasing)."""
    from torch_harmonics.examples import ShallowWaterSolver

    lmax = math.ceil(nlat / 3)
    probe = ShallowWaterSolver(nlat, nlon, 1.0, lmax=lmax, mmax=lmax, grid="equiangular", havg=mean_height)
    dt = solver_dt(
        step_seconds=step_hours * 3600.0,
        lmax=lmax,
        mean_height=mean_height,
        radius=float(probe.radius),
        gravity=float(probe.gravity),
    )
    return ShallowWaterSolver(nlat, nlon, dt, lmax=lmax, mmax=lmax, grid="equiangular", havg=mean_height)


def _area_weights(solver: torch.nn.Module) -> torch.Tensor:
    """Quadrature weights `(nlat, 1)` that sum to 1 over the grid (area means)."""
    weights = solver.quad_weights.reshape(-1, 1) * (2.0 * math.pi / solver.nlon)
    return weights / (4.0 * math.pi)


def initial_state(solver: torch.nn.Module, *, amplitude: float, seed: int) -> torch.Tensor:
    """A random spectral state `(3, lmax, mmax)` (geopotential, vorticity, divergence) at `amplitude`."""
    with torch.random.fork_rng(devices=[]):
        # The solver draws with the global generator (torch.randn_like); fork it so the seed stays local.
        torch.manual_seed(seed)
        spec = solver.random_initial_condition(mach=1.0)
    weights = _area_weights(solver)
    spec[0, 0, 0] = 0.0
    height = solver.spec2grid(spec[0]) / solver.gravity
    spec[0] = spec[0] * (HEIGHT_RMS_PER_AMPLITUDE * amplitude / torch.sqrt((height**2 * weights).sum()))
    wind = solver.getuv(spec[1:])
    spec[1:] = spec[1:] * (WIND_RMS_PER_AMPLITUDE * amplitude / torch.sqrt((wind**2 * weights).sum()))
    spec[0, 0, 0] = math.sqrt(4.0 * math.pi) * solver.havg * solver.gravity
    return spec


def to_grid(solver: torch.nn.Module, spec: torch.Tensor) -> np.ndarray:
    """`(3, nlat, nlon)` float32: layer height (m), eastward and northward velocity (m/s)."""
    height = solver.spec2grid(spec[0]) / solver.gravity
    wind = solver.getuv(spec[1:])
    return torch.cat([height[None], wind]).numpy().astype(np.float32)


def trajectory(
    solver: torch.nn.Module, spec: torch.Tensor, *, steps: int, step_hours: float, spinup_hours: float
) -> np.ndarray:
    """`(steps, 3, nlat, nlon)` snapshots every `step_hours` after `spinup_hours`."""
    substeps = round(step_hours * 3600.0 / solver.dt)
    if spinup_hours > 0:
        spec = solver.timestep(spec, round(spinup_hours * 3600.0 / solver.dt))
    out = np.empty((steps, 3, solver.nlat, solver.nlon), dtype=np.float32)
    for i in range(steps):
        if i:
            spec = solver.timestep(spec, substeps)
        out[i] = to_grid(solver, spec)
    return out


def make_dataset(
    *,
    nlat: int = 33,
    nlon: int | None = None,
    trajectories: int = 16,
    steps: int = 120,
    step_hours: float = 6.0,
    gap_steps: int = 8,
    spinup_hours: float = 48.0,
    amplitude: float = REGIMES["nonlinear"],
    mean_height: float = 1.0e4,
    seed: int = 0,
    start: str = "2000-01-01",
) -> xr.Dataset:
    """The shallow-water dataset (see the module docstring); `nlon` defaults to 2 * (nlat - 1)."""
    if nlat < 5 or nlat % 2 == 0:
        raise ValueError(f"--nlat must be odd and >= 5 (the equator and both poles on the grid), got {nlat}")
    nlon = 2 * (nlat - 1) if nlon is None else nlon
    if trajectories < 1 or steps < 2 or gap_steps < 1 or step_hours <= 0 or amplitude <= 0:
        raise ValueError(
            "--trajectories >= 1, --steps >= 2, --gap-steps >= 1, --step-hours > 0, --amplitude > 0"
        )
    solver = build_solver(nlat=nlat, nlon=nlon, step_hours=step_hours, mean_height=mean_height).double()
    seeds = np.random.SeedSequence(seed).generate_state(trajectories, dtype=np.uint32)
    with torch.inference_mode():
        runs = [
            trajectory(
                solver,
                initial_state(solver, amplitude=amplitude, seed=int(s)),
                steps=steps,
                step_hours=step_hours,
                spinup_hours=spinup_hours,
            )
            for s in seeds
        ]
    period = steps + gap_steps
    offsets = np.concatenate([k * period + np.arange(steps) for k in range(trajectories)])
    time = pd.Timestamp(start) + pd.to_timedelta(offsets * step_hours, unit="h")
    values = np.concatenate(runs)
    lat = np.rad2deg(solver.lats.numpy())
    lon = np.rad2deg(solver.lons.numpy())
    attrs = {
        "title": "Shallow-water equations on the rotating sphere (torch-harmonics ShallowWaterSolver)",
        "source": f"data/make_swe.py, torch-harmonics {_version('torch-harmonics')}",
        "Conventions": "CF-1.8",
        "trajectories": trajectories,
        "steps_per_trajectory": steps,
        "gap_steps": gap_steps,
        "spinup_hours": spinup_hours,
        "amplitude": amplitude,
        "mean_height_m": mean_height,
        "seed": seed,
        "solver_dt_s": float(solver.dt),
        "truncation_lmax": int(solver.lmax),
    }
    return cf_dataset(values, time=time, lat=lat, lon=lon, attrs=attrs)


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "unknown"


VARIABLES = {
    "h": {
        "standard_name": "geopotential_height",
        "long_name": "shallow-water layer height",
        "units": "m",
    },
    "u": {"standard_name": "eastward_wind", "long_name": "eastward velocity", "units": "m s-1"},
    "v": {"standard_name": "northward_wind", "long_name": "northward velocity", "units": "m s-1"},
}


def cf_dataset(
    values: np.ndarray, *, time: pd.DatetimeIndex, lat: np.ndarray, lon: np.ndarray, attrs: dict
) -> xr.Dataset:
    """`(time, 3, lat, lon)` values as a CF dataset of `h`, `u`, `v` with CF coordinates."""
    coords = {
        "time": ("time", time, {"standard_name": "time", "axis": "T"}),
        "lat": ("lat", lat, {"standard_name": "latitude", "units": "degrees_north", "axis": "Y"}),
        "lon": ("lon", lon, {"standard_name": "longitude", "units": "degrees_east", "axis": "X"}),
    }
    data = {
        name: (("time", "lat", "lon"), values[:, i], meta) for i, (name, meta) in enumerate(VARIABLES.items())
    }
    return xr.Dataset(data, coords=coords, attrs=attrs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="output file: .nc (NetCDF4) or .zarr")
    parser.add_argument(
        "--nlat", type=int, default=33, help="latitudes, 90..-90 (odd; default 33: 5.625 deg)"
    )
    parser.add_argument("--nlon", type=int, default=None, help="longitudes (default 2 * (nlat - 1))")
    parser.add_argument("--trajectories", type=int, default=16)
    parser.add_argument("--steps", type=int, default=120, help="snapshots per trajectory (default 120)")
    parser.add_argument("--step-hours", type=float, default=6.0)
    parser.add_argument("--gap-steps", type=int, default=8, help="missing steps between trajectories")
    parser.add_argument("--spinup-hours", type=float, default=48.0)
    amplitude = parser.add_mutually_exclusive_group()
    amplitude.add_argument("--regime", choices=sorted(REGIMES), default=None, help="default: nonlinear")
    amplitude.add_argument("--amplitude", type=float, default=None, help="A: 100*A m and 10*A m/s RMS")
    parser.add_argument("--mean-height", type=float, default=1.0e4, help="global mean layer height (m)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--start", default="2000-01-01", help="time of the first snapshot")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.out.suffix not in (".nc", ".zarr"):
        print(f"make_swe: error: --out {args.out} must end in .nc or .zarr", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    from fno_forecast.output import write_forecast

    try:
        dataset = make_dataset(
            nlat=args.nlat,
            nlon=args.nlon,
            trajectories=args.trajectories,
            steps=args.steps,
            step_hours=args.step_hours,
            gap_steps=args.gap_steps,
            spinup_hours=args.spinup_hours,
            amplitude=args.amplitude if args.amplitude is not None else REGIMES[args.regime or "nonlinear"],
            mean_height=args.mean_height,
            seed=args.seed,
            start=args.start,
        )
    except ValueError as error:
        print(f"make_swe: error: {error}", file=sys.stderr)
        return 2
    write_forecast(dataset, args.out)
    print(f"wrote {args.out}: {dict(dataset.sizes)}, solver step {dataset.attrs['solver_dt_s']:g} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
