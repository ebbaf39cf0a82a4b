"""The linear spectral baseline: the linear dynamics of the system, fitted on a training period.

Departures from the time-mean state (the constant term of the bundle's harmonic climatology; the
climatology's seasonal and daily harmonics are left out, since on data without such cycles, the
shallow-water runs among them, they are fitted noise that a step-to-step map cannot follow: with them,
a tiny shallow-water set scored worse than persistence at 6 h) are taken to spherical-harmonic space (torch-harmonics'
`RealSHT`, orthonormal, on the equiangular grid with both poles). Linear dynamics that do not change under
a rotation about the polar axis (the linearised shallow-water equations on a rotating sphere, for one)
never mix zonal wavenumbers, so for each `m` a complex linear map takes the coefficients of every degree
`l >= m` and every variable at step `t` (and, with `order=2`, at `t - 1`) to those at `t + 1`, plus an
intercept. It is fitted by ridge regression over every run of consecutive training steps (the normal
equations are accumulated chunk by chunk, so the training data are never held whole), with each
variable scaled to unit variance per `m` so that the penalty treats variables in different units alike.
A step adds to the state the change the maps make to its resolved anomaly, `ISHT(A c + b) - ISHT(c)`
with `c` the coefficients of the state's departure from the time-mean state: the part the truncated
transform does not represent is carried over unchanged (persistence). `SpectralPrior` is that step in
torch, on the device: the baseline that `evaluate` scores and the stepper's linear spectral prior
(`fno_forecast.models.stepper`), so the two cannot differ. Its maps are padded to one dense block per `m`
(zero rows and columns for degrees below `m`), complex numbers stored as trailing (real, imaginary) pairs
so that safetensors can hold them.

All the degrees and orders the grid resolves are kept (`nlat`, and `nlon // 2 + 1`), at most so many that a
map has `MAX_UNKNOWNS` inputs: wind components, which are not smooth scalars at the poles, need the high
degrees there (on a 17 x 32 shallow-water grid, truncating at degree 9 left a 1-step wind error of 6% of
persistence, mostly at the poles; all 17 degrees, 2%). Above `(nlat + 1) // 2` the equiangular quadrature
is not an exact projection, so fields are analysed by least squares against the synthesis
(`fno_forecast.models.spectral_analysis`): analysis after synthesis is then the identity, and the
stepper's prior, which transforms each state it is given, advances a state exactly as the baseline that
carries its coefficients does. Bundles fitted before that analysis say `quadrature` and keep it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import xarray as xr
from torch import nn
from torch_harmonics import InverseRealSHT, RealSHT

from fno_forecast.climatology import Climatology
from fno_forecast.data.timeaxis import format_time, times_to_hours
from fno_forecast.models.spectral_analysis import LeastSquaresSHT

DEFAULT_RIDGE = 1e-4  # penalty as a fraction of the mean variance of the (scaled) inputs
MAX_UNKNOWNS = 2000  # inputs of one map (variables x degrees x order)
CHUNK_STEPS = 256
MAX_PRIOR_ENTRIES = 4_000_000  # complex entries of a stepper's padded maps (64 MiB as float64 pairs)
ANALYSES = ("least_squares", "quadrature")  # new fits use the first; bundles from before it the second


def analysis_transform(*, nlat: int, nlon: int, degrees: int, analysis: str) -> nn.Module:
    """Fields `(..., nlat, nlon)` to coefficients `(..., degrees, degrees)` complex128: the least-squares
    inverse of the synthesis (`fno_forecast.models.spectral_analysis`) or torch-harmonics' quadrature."""
    if analysis not in ANALYSES:
        raise ValueError(f"spectral analysis {analysis!r}: expected one of {ANALYSES}")
    if analysis == "least_squares":
        return LeastSquaresSHT(nlat, nlon, lmax=degrees, mmax=degrees)
    return RealSHT(nlat, nlon, lmax=degrees, mmax=degrees, grid="equiangular").to(torch.float64)


def sphere_with_poles(lat: np.ndarray, lon: np.ndarray) -> bool:
    """True for a global equiangular grid: lat from 90 down to -90 evenly, longitudes closing the circle."""
    lat, lon = np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64)
    if lat.size < 3 or lon.size < 4:
        return False
    dlon = lon[1] - lon[0]
    return bool(
        abs(lat[0] - 90.0) < 1e-6
        and abs(lat[-1] + 90.0) < 1e-6
        and np.allclose(np.diff(lat), lat[1] - lat[0])
        and np.allclose(np.diff(lon), dlon)
        and abs(dlon * lon.size - 360.0) < 1e-6
    )


def degrees_for(*, nlat: int, nlon: int, channels: int, order: int) -> int:
    """Degrees (and orders) kept: all the grid resolves, and at most `MAX_UNKNOWNS` inputs per map."""
    return max(1, min(nlat, nlon // 2 + 1, MAX_UNKNOWNS // (channels * order)))


@dataclass(frozen=True)
class _Transforms:
    forward: nn.Module
    degrees: int

    @classmethod
    def build(cls, *, nlat: int, nlon: int, degrees: int, analysis: str) -> _Transforms:
        forward = analysis_transform(nlat=nlat, nlon=nlon, degrees=degrees, analysis=analysis)
        return cls(forward=forward, degrees=degrees)

    def coefficients(self, fields: np.ndarray) -> np.ndarray:
        """`(time, channel, l, m)` complex128 of `(time, channel, lat, lon)` fields."""
        with torch.no_grad():
            return self.forward(torch.from_numpy(np.asarray(fields, dtype=np.float64))).numpy()


def _features(coefficients: np.ndarray, m: int) -> np.ndarray:
    """`(time, channel * (L - m))`: the coefficients of wavenumber m, degrees l >= m, all variables."""
    return coefficients[:, :, m:, m].reshape(len(coefficients), -1)


@dataclass(frozen=True)
class LinearSpectral:
    """Per zonal wavenumber `m`: `maps[m]` `(order * k_m, k_m)` and `intercepts[m]` `(k_m,)`, complex."""

    maps: tuple[np.ndarray, ...]
    intercepts: tuple[np.ndarray, ...]
    order: int
    degrees: int
    ridge: float
    mean: np.ndarray  # (channel, lat, lon): the reference state the maps act on departures from
    fitted_on: str
    pairs: int
    analysis: str = "least_squares"

    @property
    def spectral_radius(self) -> float:
        """The largest |eigenvalue| of the step maps (above 1: some pattern grows without bound)."""
        largest = 0.0
        for matrix in self.maps:
            k = matrix.shape[1]
            companion = np.zeros((self.order * k, self.order * k), dtype=complex)
            companion[:, :k] = matrix
            companion[: (self.order - 1) * k, k:] = np.eye((self.order - 1) * k)
            largest = max(largest, float(np.abs(np.linalg.eigvals(companion)).max()))
        return largest

    def packed(self) -> dict[str, Any]:
        """The arguments of `SpectralPrior`: `maps` `(M, order * C * L, C * L, 2)`, `intercepts`
        `(M, C * L, 2)` (float64, complex as real pairs, zero below degree m), `reference` `(C, H, W)` and
        the `analysis` the maps were fitted with."""
        degrees, channels = self.degrees, self.mean.shape[0]
        width = channels * degrees
        maps = np.zeros((degrees, self.order * width, width), dtype=complex)
        intercepts = np.zeros((degrees, width), dtype=complex)
        for m, (matrix, intercept) in enumerate(zip(self.maps, self.intercepts, strict=True)):
            index = (np.arange(channels)[:, None] * degrees + np.arange(m, degrees)[None, :]).reshape(-1)
            rows = np.concatenate([index + lag * width for lag in range(self.order)])
            maps[m][np.ix_(rows, index)] = matrix
            intercepts[m, index] = intercept
        return {
            "maps": np.stack([maps.real, maps.imag], axis=-1),
            "intercepts": np.stack([intercepts.real, intercepts.imag], axis=-1),
            "reference": np.asarray(self.mean, dtype=np.float64),
            "analysis": self.analysis,
        }

    def rollout(
        self,
        state: np.ndarray,
        *,
        init_hours: np.ndarray,
        step_hours: float,
        n_steps: int,
        previous: np.ndarray | None = None,
    ) -> Iterator[np.ndarray]:
        """The baseline: yield `n_steps` forecasts `(batch, channel, lat, lon)` float32 from `state` at
        `init_hours`, the coefficients carried from step to step (`SpectralPrior.carried`).

        With `order=2`, `previous` is the state one step before (persistence of `state` when None)."""
        del init_hours, step_hours  # the dynamics are autonomous: the same map at every time
        prior = SpectralPrior(**self.packed())
        with torch.no_grad():
            for fields in prior.carried(
                _tensor(state, torch.float64), previous=_tensor(previous, torch.float64), n_steps=n_steps
            ):
                yield fields.float().numpy()

    def prior_rollout(
        self, state: np.ndarray, *, n_steps: int, previous: np.ndarray | None = None
    ) -> Iterator[np.ndarray]:
        """What the stepper's prior forecasts: `SpectralPrior` step after step on float32 states, each
        step transforming the state it is given (the baseline's first step, then near it)."""
        prior = SpectralPrior(**self.packed())
        now = _tensor(state, torch.float32)
        before = _tensor(previous, torch.float32)
        with torch.no_grad():
            for _ in range(n_steps):
                before, now = now, prior(now, previous=before)
                yield now.numpy()


def _tensor(values: np.ndarray | None, dtype: torch.dtype) -> torch.Tensor | None:
    return None if values is None else torch.as_tensor(np.asarray(values), dtype=dtype)


class SpectralPrior(nn.Module):
    """One step of the linear spectral model in torch: `(B, C, H, W)` state (and previous state) in,
    next state out, computed in float64 and returned in the state's dtype. Build it from
    `LinearSpectral.packed()` or from a bundle's arrays and its `analysis`."""

    def __init__(
        self,
        *,
        maps: np.ndarray,
        intercepts: np.ndarray,
        reference: np.ndarray,
        analysis: str = "quadrature",
    ) -> None:
        super().__init__()
        reference = np.asarray(reference, dtype=np.float64)
        if reference.ndim != 3:
            raise ValueError(f"SpectralPrior.reference: expected (channel, lat, lon), got {reference.shape}")
        channels, nlat, nlon = reference.shape
        degrees = maps.shape[0] if maps.ndim == 4 else 0
        width = channels * degrees
        order = maps.shape[1] // width if width else 0
        if order not in (1, 2) or maps.shape != (degrees, order * width, width, 2):
            raise ValueError(
                f"SpectralPrior.maps: expected (degrees, order * {channels} * degrees, {channels} * degrees, 2) "
                f"with order 1 or 2, got {maps.shape}"
            )
        if intercepts.shape != (degrees, width, 2):
            raise ValueError(
                f"SpectralPrior.intercepts: expected {(degrees, width, 2)}, got {intercepts.shape}"
            )
        if degrees > min(nlat, nlon // 2 + 1):
            raise ValueError(f"SpectralPrior: {degrees} degrees exceed what a {nlat} x {nlon} grid resolves")
        self.order, self.degrees, self.analysis = order, degrees, analysis
        self.forward_transform = analysis_transform(nlat=nlat, nlon=nlon, degrees=degrees, analysis=analysis)
        common = {"lmax": degrees, "mmax": degrees, "grid": "equiangular"}
        self.inverse_transform = InverseRealSHT(nlat, nlon, **common).to(torch.float64)
        for name, values in (("maps", maps), ("intercepts", intercepts), ("reference", reference)):
            self.register_buffer(name, torch.from_numpy(np.array(values, dtype=np.float64)))

    def arrays(self) -> dict[str, torch.Tensor]:
        """The buffers a bundle stores (CPU, contiguous)."""
        return {name: getattr(self, name).detach().cpu().contiguous() for name in ARRAY_NAMES}

    def _advance(self, now: torch.Tensor, before: torch.Tensor) -> torch.Tensor:
        """Coefficients `(B, C, L, M)` one step on from `now` (and `before`, for order 2)."""
        batch, channels = now.shape[:2]

        def features(coefficients: torch.Tensor) -> torch.Tensor:  # (B, M, C * L)
            return coefficients.permute(0, 3, 1, 2).reshape(batch, self.degrees, channels * self.degrees)

        inputs = features(now) if self.order == 1 else torch.cat([features(now), features(before)], dim=-1)
        after = torch.einsum("bmi,mij->bmj", inputs, torch.view_as_complex(self.maps))
        after = after + torch.view_as_complex(self.intercepts)
        return after.reshape(batch, self.degrees, channels, self.degrees).permute(0, 2, 3, 1).contiguous()

    def _coefficients(self, state: torch.Tensor | None, fallback: torch.Tensor) -> torch.Tensor:
        if state is None:
            return fallback
        return self.forward_transform(state.to(torch.float64) - self.reference)

    def forward(self, state: torch.Tensor, *, previous: torch.Tensor | None = None) -> torch.Tensor:
        return state + self.change(state, previous=previous)

    def change(self, state: torch.Tensor, *, previous: torch.Tensor | None = None) -> torch.Tensor:
        """What one step adds to `state`, in the state's dtype: `ISHT(A c + b) - ISHT(c)`."""
        with torch.autocast(device_type=state.device.type, enabled=False):
            now = self.forward_transform(state.to(torch.float64) - self.reference)
            after = self._advance(now, self._coefficients(previous, now))
            return (self.inverse_transform(after) - self.inverse_transform(now)).to(state.dtype)

    def carried(
        self, state: torch.Tensor, *, previous: torch.Tensor | None = None, n_steps: int
    ) -> Iterator[torch.Tensor]:
        """The baseline's rollout: the coefficients carried from step to step (never transformed back
        and forth), the unresolved part of the initial anomaly kept; float64 states."""
        anomaly = state.to(torch.float64) - self.reference
        now = self.forward_transform(anomaly)
        kept = self.reference + anomaly - self.inverse_transform(now)
        before = self._coefficients(previous, now)
        for _ in range(n_steps):
            before, now = now, self._advance(now, before)
            yield kept + self.inverse_transform(now)


ARRAY_NAMES = ("maps", "intercepts", "reference")


def prior_fits(*, nlat: int, nlon: int, channels: int, order: int = 1) -> bool:
    """True where a stepper can hold the maps: every degree the grid resolves kept (`MAX_UNKNOWNS`) and
    the padded maps under `MAX_PRIOR_ENTRIES` complex numbers."""
    degrees = degrees_for(nlat=nlat, nlon=nlon, channels=channels, order=order)
    entries = degrees * order * (channels * degrees) ** 2
    return degrees == min(nlat, nlon // 2 + 1) and entries <= MAX_PRIOR_ENTRIES


def _consecutive_runs(hours: np.ndarray, *, step_hours: float) -> list[slice]:
    breaks = np.flatnonzero(np.abs(np.diff(hours) - step_hours) > 1e-6) + 1
    edges = [0, *breaks.tolist(), len(hours)]
    return [slice(a, b) for a, b in zip(edges[:-1], edges[1:], strict=True)]


@dataclass
class _Normal:
    """Sums for one map's ridge regression with an intercept."""

    xx: np.ndarray
    xy: np.ndarray
    x: np.ndarray
    y: np.ndarray
    n: int = 0

    def add(self, inputs: np.ndarray, targets: np.ndarray) -> None:
        self.xx += inputs.conj().T @ inputs
        self.xy += inputs.conj().T @ targets
        self.x += inputs.sum(axis=0)
        self.y += targets.sum(axis=0)
        self.n += len(inputs)

    def solve(self, *, channels: int, order: int, ridge: float) -> tuple[np.ndarray, np.ndarray]:
        mx, my = self.x / self.n, self.y / self.n
        sxx = self.xx - self.n * np.outer(mx.conj(), mx)
        sxy = self.xy - self.n * np.outer(mx.conj(), my)
        # one scale per variable (and lag): its mean variance over the degrees of this m
        variance = np.real(np.diag(sxx)).reshape(order * channels, -1).mean(axis=1)
        scale = np.repeat(np.sqrt(np.maximum(variance, 1e-30)), sxx.shape[0] // (order * channels))
        scaled = sxx / np.outer(scale, scale)
        penalty = ridge * float(np.real(np.trace(scaled))) / len(scaled)
        solution = np.linalg.solve(scaled + penalty * np.eye(len(scaled)), sxy / scale[:, None])
        matrix = solution / scale[:, None]
        return matrix, my - mx @ matrix


def fit_linear_spectral(
    train: xr.DataArray,
    climatology: Climatology,
    *,
    step_hours: float,
    order: int = 1,
    ridge: float = DEFAULT_RIDGE,
    analysis: str = ANALYSES[0],
) -> LinearSpectral | None:
    """Fit on a canonical array `(time, channel, lat, lon)` (lat descending) of a global grid with both
    poles; None when the grid is not one or the array holds too few consecutive steps."""
    if order not in (1, 2):
        raise ValueError(f"fit_linear_spectral: order must be 1 or 2, got {order}")
    if not sphere_with_poles(train["lat"].values, train["lon"].values):
        return None
    _, channels, nlat, nlon = train.shape
    degrees = degrees_for(nlat=nlat, nlon=nlon, channels=channels, order=order)
    transforms = _Transforms.build(nlat=nlat, nlon=nlon, degrees=degrees, analysis=analysis)
    hours = times_to_hours(np.asarray(train["time"].values))
    mean = np.asarray(climatology.coefficients[0], dtype=np.float64)  # the constant term
    normals = []
    for m in range(degrees):
        k = channels * (degrees - m)
        normals.append(
            _Normal(
                xx=np.zeros((order * k, order * k), complex),
                xy=np.zeros((order * k, k), complex),
                x=np.zeros(order * k, complex),
                y=np.zeros(k, complex),
            )
        )
    for run in _consecutive_runs(hours, step_hours=step_hours):
        for start in range(run.start, run.stop - order, CHUNK_STEPS):
            part = slice(start, min(start + CHUNK_STEPS + order, run.stop))
            anomaly = np.asarray(train.isel(time=part).values, dtype=np.float64) - mean
            coefficients = transforms.coefficients(anomaly)
            for m, normal in enumerate(normals):
                features = _features(coefficients, m)
                inputs = features[order - 1 : -1]
                if order == 2:
                    inputs = np.hstack([inputs, features[:-2]])
                normal.add(inputs, features[order:])
    pairs = normals[0].n
    if pairs < order * channels * degrees:  # as many pairs as inputs of the largest map (ridge does the rest)
        return None
    solved = [n.solve(channels=channels, order=order, ridge=ridge) for n in normals]
    return LinearSpectral(
        maps=tuple(s[0] for s in solved),
        intercepts=tuple(s[1] for s in solved),
        order=order,
        degrees=degrees,
        ridge=ridge,
        mean=mean,
        fitted_on=f"{format_time(train['time'].values[0])}/{format_time(train['time'].values[-1])}",
        pairs=int(pairs),
        analysis=analysis,
    )
