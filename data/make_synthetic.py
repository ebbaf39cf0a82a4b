"""Synthetic reanalysis-like sets for retraining checks: hourly regional, daily regional, monthly global.

Each set is a known cycle (diurnal and/or seasonal) plus weather-like anomalies: a smooth random field that
is advected by a steady wind, decays with an e-folding time and is renewed by smooth noise (an AR(1)
process in Fourier space, where advection is an exact phase shift). So persistence loses skill with lead,
the anomaly is predictable for a few decorrelation times, and a climatology fitted on the right span is the
long-lead limit. Deterministic by `--seed`; CF NetCDF output (coordinates with `standard_name`, `units`,
`axis`), written atomically.

    python data/make_synthetic.py hourly --out hourly_t2m.nc     # 4 weeks, 1 h, 16 x 24 regional, t2m
    python data/make_synthetic.py daily --out daily_t2m.nc       # 4 years, 1 day, 16 x 24 regional, t2m
    python data/make_synthetic.py monthly --out monthly_global.nc  # 30 years, 1 month, 19 x 36 global, tas + psl

Sizes default to what trains in minutes on 2 CPU cores; every size is a flag.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr


@dataclass(frozen=True)
class AnomalySpec:
    """Advected AR(1) anomalies: std (units of the field), e-folding hours, wind in grid cells per hour."""

    std: float
    efold_hours: float
    cells_per_hour: tuple[float, float]  # (lat, lon) drift
    scale_cells: float  # spatial correlation length in grid cells


HOURLY_ANOMALIES = AnomalySpec(std=2.5, efold_hours=72.0, cells_per_hour=(0.02, 0.1), scale_cells=4.0)


def advected_anomalies(
    *, n_time: int, step_hours: float, shape: tuple[int, int], spec: AnomalySpec, rng: np.random.Generator
) -> np.ndarray:
    """`(time, lat, lon)` float64 anomalies with std ~`spec.std`, on a doubled periodic domain, cropped.

    One step: `a <- phi * shift(a) + c * e`, with `phi = exp(-step / efold)`, the shift a Fourier phase ramp
    (advection by the drift), and `e` a forcing that is itself red in time (`e <- psi * shift(e) + ...`,
    a third of the e-folding time) and white noise filtered to a Gaussian spectrum in space: so the field
    changes smoothly from step to step, as weather does, instead of jumping by fresh noise every hour.
    `c` keeps the variance of `a` at one before scaling by `spec.std`.
    """
    ny, nx = 2 * shape[0], 2 * shape[1]
    ky = np.fft.fftfreq(ny)[:, None]
    kx = np.fft.fftfreq(nx)[None, :]
    k2 = ky**2 + kx**2
    filt = np.exp(-0.5 * k2 * (2 * np.pi * spec.scale_cells) ** 2)
    filt[0, 0] = 0.0  # no domain-mean mode: the anomaly of the whole domain averages to zero
    filt /= np.sqrt(np.mean(filt**2))  # unit variance of the filtered noise
    phi = float(np.exp(-step_hours / spec.efold_hours))
    psi = float(np.exp(-3.0 * step_hours / spec.efold_hours))
    dy, dx = (c * step_hours for c in spec.cells_per_hour)
    shift = np.exp(-2j * np.pi * (ky * dy + kx * dx))
    scale = np.sqrt((1.0 - phi**2) * (1.0 - phi * psi) / (1.0 + phi * psi))

    def noise() -> np.ndarray:
        return np.fft.fft2(rng.standard_normal((ny, nx))) * filt

    state, forcing = noise(), noise()
    out = np.empty((n_time, *shape))
    for t in range(n_time):
        forcing = psi * shift * forcing + np.sqrt(1.0 - psi**2) * noise()
        state = phi * shift * state + scale * forcing
        out[t] = np.fft.ifft2(state).real[: shape[0], : shape[1]]
    return spec.std * out


def _regional_grid(nlat: int, nlon: int, *, south: float, west: float, res: float) -> tuple[np.ndarray, ...]:
    lat = south + res * np.arange(nlat)[::-1]  # north to south
    lon = west + res * np.arange(nlon)
    return lat.astype(np.float32), lon.astype(np.float32)


def _hours(times: pd.DatetimeIndex) -> np.ndarray:
    return (times - pd.Timestamp("1970-01-01")) / pd.Timedelta(hours=1)


def _seasonal(times: pd.DatetimeIndex, lat: np.ndarray, amplitude: float) -> np.ndarray:
    """`(time, lat, 1)`: a cosine annual cycle peaking in late July in the north, opposite in the south."""
    day = np.asarray(times.day_of_year, dtype=np.float64) + np.asarray(times.hour) / 24.0
    phase = np.cos(2 * np.pi * (day - 200.0) / 365.2425)
    return amplitude * phase[:, None, None] * np.sin(np.radians(lat))[None, :, None]


def make_hourly(
    *, seed: int = 0, days: int = 28, nlat: int = 16, nlon: int = 24, start: str = "2021-06-01"
) -> xr.Dataset:
    """Hourly 2 m temperature over a mid-latitude region: a diurnal cycle by local solar time, a
    north-south gradient, and advected anomalies (2.5 K, 72 h e-folding, a cell every 10 h eastward)."""
    rng = np.random.default_rng([seed, 1])
    times = pd.date_range(start, periods=24 * days, freq="h")
    lat, lon = _regional_grid(nlat, nlon, south=40.0, west=0.0, res=0.5)
    base = 295.0 - 0.6 * (lat - 40.0)[:, None] + 1.5 * np.sin(np.radians(lon * 25))[None, :]
    amplitude = 5.0 + 2.0 * np.cos(np.radians(lon * 15))[None, :] * np.ones((nlat, 1))
    local_hour = (_hours(times).to_numpy()[:, None] + lon[None, :] / 15.0) % 24.0  # (time, lon)
    diurnal = np.cos(2 * np.pi * (local_hour - 15.0) / 24.0)[:, None, :] * amplitude[None]
    anomaly = advected_anomalies(
        n_time=len(times), step_hours=1.0, shape=(nlat, nlon), spec=HOURLY_ANOMALIES, rng=rng
    )
    t2m = base[None] + diurnal + anomaly
    return _dataset({"t2m": (t2m, "K", "air_temperature", "2 metre temperature")}, times, lat, lon)


def make_daily(
    *,
    seed: int = 0,
    years: int = 4,
    nlat: int = 16,
    nlon: int = 24,
    start: str = "2015-01-01",
    slow_mode: bool = True,
) -> xr.Dataset:
    """Daily-mean 2 m temperature over a region: an annual cycle (8 K at 45 N), advected weather
    anomalies (3 K, 4-day e-folding, a cell a day eastward) and a slow large-scale mode (1.5 K, 30-day
    e-folding, drifting a cell in ten days), as persistent regimes, soil moisture and sea-surface
    temperature give real daily means: a fifth of the anomaly variance, so the anomaly (about its annual
    harmonics) still correlates at 0.12 with itself ten days on, at the low end of midlatitude daily
    temperatures. Without it (`slow_mode=False`, `--no-slow-mode`: the set before this mode) that
    correlation is -0.06, and no forecast can beat the climatology at 10 days by more than a fraction of
    a percent (`python -m benchmarks.predictability` measures it: 0.8%; 3.3% with the mode)."""
    rng = np.random.default_rng([seed, 2])
    times = pd.date_range(start, periods=int(round(365.25 * years)), freq="D")
    lat, lon = _regional_grid(nlat, nlon, south=35.0, west=-10.0, res=1.0)
    base = 288.0 - 0.7 * (lat - 35.0)[:, None] + np.zeros((1, nlon))
    seasonal = _seasonal(times, lat, 11.0)
    spec = AnomalySpec(std=3.0, efold_hours=96.0, cells_per_hour=(0.01, 1.0 / 24.0), scale_cells=3.0)
    anomaly = advected_anomalies(n_time=len(times), step_hours=24.0, shape=(nlat, nlon), spec=spec, rng=rng)
    slow_spec = AnomalySpec(std=1.5, efold_hours=30 * 24.0, cells_per_hour=(0.0, 0.1 / 24.0), scale_cells=6.0)
    slow = advected_anomalies(n_time=len(times), step_hours=24.0, shape=(nlat, nlon), spec=slow_spec, rng=rng)
    t2m = base[None] + seasonal + anomaly + (slow if slow_mode else 0.0)
    return _dataset({"t2m": (t2m, "K", "air_temperature", "2 metre temperature")}, times, lat, lon)


def make_monthly(
    *, seed: int = 0, years: int = 30, res: float = 10.0, start: str = "1981-01-01", slow_mode: bool = True
) -> xr.Dataset:
    """Monthly global near-surface temperature and sea-level pressure on an equiangular grid with both
    poles: annual cycles opposite in the two hemispheres, shared anomalies (0.8 K, 3-month e-folding,
    drifting east) strongest away from the poles so the pole rows stay nearly uniform, and a slow
    tropical mode (0.8 K and -1.6 hPa, 9-month e-folding, standing) in the manner of ENSO: what gives
    real monthly means their skill beyond a season. Without it (`slow_mode=False`, `--no-slow-mode`: the
    set before this mode) no forecast can beat the climatology at 6 months by more than a fraction of a
    percent (`python -m benchmarks.predictability` measures it)."""
    rng = np.random.default_rng([seed, 3])
    times = pd.date_range(start, periods=12 * years, freq="MS")
    lat = np.arange(90.0, -90.0 - 1e-6, -res).astype(np.float32)
    lon = np.arange(0.0, 360.0, res).astype(np.float32)
    nlat, nlon = len(lat), len(lon)
    coslat = np.clip(np.cos(np.radians(lat)), 0.0, None)[:, None]
    spec = AnomalySpec(std=1.0, efold_hours=90 * 24.0, cells_per_hour=(0.0, 0.5 / 730.0), scale_cells=2.0)
    step = 365.2425 * 24.0 / 12.0
    shared = advected_anomalies(n_time=len(times), step_hours=step, shape=(nlat, nlon), spec=spec, rng=rng)
    own = advected_anomalies(n_time=len(times), step_hours=step, shape=(nlat, nlon), spec=spec, rng=rng)
    slow_spec = AnomalySpec(std=1.0, efold_hours=9 * 730.0, cells_per_hour=(0.0, 0.0), scale_cells=4.0)
    slow = advected_anomalies(n_time=len(times), step_hours=step, shape=(nlat, nlon), spec=slow_spec, rng=rng)
    tropics = np.exp(-((lat / 20.0) ** 2))[None, :, None]
    taper = np.sqrt(coslat)[None]
    tas = 258.0 + 40.0 * coslat[None] + _seasonal(times, lat, 12.0) + 0.8 * taper * shared
    slow = slow if slow_mode else np.zeros_like(slow)
    tas = tas + 0.8 * tropics * slow
    psl = 1013.0 - 6.0 * np.cos(np.radians(3 * lat))[None, :, None] + _seasonal(times, lat, -4.0)
    psl = psl + taper * (-1.5 * shared + 1.0 * own) - 1.6 * tropics * slow
    psl = np.broadcast_to(psl, tas.shape)
    fields = {
        "tas": (tas, "K", "air_temperature", "near-surface air temperature"),
        "psl": (psl, "hPa", "air_pressure_at_mean_sea_level", "sea-level pressure"),
    }
    return _dataset(fields, times, lat, lon)


def _dataset(
    fields: dict[str, tuple[np.ndarray, str, str, str]],
    times: pd.DatetimeIndex,
    lat: np.ndarray,
    lon: np.ndarray,
) -> xr.Dataset:
    coords = {
        "time": ("time", times, {"standard_name": "time", "axis": "T"}),
        "lat": ("lat", lat, {"standard_name": "latitude", "units": "degrees_north", "axis": "Y"}),
        "lon": ("lon", lon, {"standard_name": "longitude", "units": "degrees_east", "axis": "X"}),
    }
    variables = {
        name: (
            ("time", "lat", "lon"),
            np.asarray(values, dtype=np.float32),
            {"units": units, "standard_name": standard, "long_name": long_name},
        )
        for name, (values, units, standard, long_name) in fields.items()
    }
    return xr.Dataset(
        variables,
        coords=coords,
        attrs={"Conventions": "CF-1.8", "title": "synthetic reanalysis-like set (data/make_synthetic.py)"},
    )


def write_atomic(dataset: xr.Dataset, out: Path) -> Path:
    """Write NetCDF to a temporary file beside `out`, fsync, then rename over it."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".part")
    os.close(handle)
    try:
        encoding = {"time": {"units": "hours since 1970-01-01 00:00:00", "dtype": "float64"}}
        dataset.to_netcdf(temporary, encoding=encoding)
        with open(temporary, "rb+") as stream:
            os.fsync(stream.fileno())
        os.replace(temporary, out)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return out


MAKERS = {"hourly": make_hourly, "daily": make_daily, "monthly": make_monthly}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="kind", required=True)
    for kind in MAKERS:
        p = sub.add_parser(kind)
        p.add_argument("--out", required=True, type=Path)
        p.add_argument("--seed", type=int, default=0)
        if kind == "hourly":
            p.add_argument("--days", type=int, default=28)
        else:
            p.add_argument("--years", type=int, default=4 if kind == "daily" else 30)
        if kind != "hourly":
            help_text = "no ENSO-like mode" if kind == "monthly" else "no slow mode"
            p.add_argument("--no-slow-mode", dest="slow_mode", action="store_false", help=help_text)
        if kind == "monthly":
            p.add_argument("--res", type=float, default=10.0, help="grid spacing in degrees (divides 180)")
        else:
            p.add_argument("--nlat", type=int, default=16)
            p.add_argument("--nlon", type=int, default=24)
    args = parser.parse_args(argv)
    options = {k: v for k, v in vars(args).items() if k not in ("kind", "out")}
    try:
        dataset = MAKERS[args.kind](**options)
    except ValueError as error:
        print(f"make_synthetic {args.kind}: {error}", file=sys.stderr)
        return 2
    print(f"wrote {write_atomic(dataset, args.out)} ({dict(dataset.sizes)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
