"""Spherical-harmonic analysis by least squares: the exact inverse of torch-harmonics' synthesis.

torch-harmonics' `RealSHT` analyses a field by quadrature, which on the equiangular grid is exact only up
to degree `(nlat + 1) // 2`; the linear spectral prior keeps every degree the grid resolves (the winds need
the high degrees near the poles), so there `RealSHT(InverseRealSHT(c)) != c`, and a prior that transforms
each state it is given drifts from the rollout that carries its coefficients (on 33 x 64 shallow water:
4-47% worse at 24 h). Here the analysis is instead the least-squares fit of the library's own synthesis,
per zonal wavenumber `m`: `c_m = pinv(S_m) F_m`, with `F_m` the field's `m`-th Fourier coefficient along
each latitude and `S_m` (latitudes x degrees) what `InverseRealSHT` makes of unit coefficients. Then
analysis after synthesis is the identity on what the synthesis can represent, so a state transformed,
advanced and transformed back is advanced exactly as its carried coefficients are. The library has no
such analysis (its `RealSHT` is quadrature only), hence this module; the synthesis stays the library's.

Where `S_m` has fewer independent rows than degrees (for `m > 0` the pole rows vanish), the
pseudo-inverse gives the minimum-norm coefficients; the remaining directions are invisible on the grid,
and maps fitted on these coefficients never act on them.
"""

from __future__ import annotations

import torch
from torch import nn
from torch_harmonics import InverseRealSHT

RTOL = (
    1e-10  # singular values below this fraction of the largest count as zero (directions the grid cannot see)
)


def synthesis_matrices(inverse: InverseRealSHT, *, nlon: int) -> torch.Tensor:
    """`(M, nlat, L)` complex128: column `l` of block `m` is the `m`-th Fourier coefficient (rfft, norm
    "forward") along each latitude of what `inverse` makes of a unit coefficient at `(l, m)`."""
    degrees, orders = inverse.lmax, inverse.mmax
    blocks = []
    with torch.no_grad():
        for m in range(orders):
            unit = torch.zeros(degrees, degrees, orders, dtype=torch.complex128)
            unit[torch.arange(degrees), torch.arange(degrees), m] = 1.0
            fields = inverse(unit)  # (L, nlat, nlon)
            blocks.append(torch.fft.rfft(fields, n=nlon, dim=-1, norm="forward")[..., m].T)  # (nlat, L)
    return torch.stack(blocks)


class LeastSquaresSHT(nn.Module):
    """`(..., nlat, nlon)` real fields -> `(..., L, M)` complex128 coefficients, the least-squares inverse
    of `InverseRealSHT(nlat, nlon, lmax=L, mmax=M, grid="equiangular")` (zero for `l < m`)."""

    def __init__(self, nlat: int, nlon: int, *, lmax: int, mmax: int) -> None:
        super().__init__()
        inverse = InverseRealSHT(nlat, nlon, lmax=lmax, mmax=mmax, grid="equiangular").to(torch.float64)
        synthesis = synthesis_matrices(inverse, nlon=nlon)
        analysis = torch.zeros(mmax, lmax, nlat, dtype=torch.complex128)
        for m in range(mmax):
            block = synthesis[m, :, m:]  # degrees l >= m: the others are zero for this m
            analysis[m, m:] = torch.linalg.pinv(block, rtol=RTOL)
        self.nlon, self.mmax = nlon, mmax
        self.register_buffer("analysis", analysis, persistent=False)

    def forward(self, fields: torch.Tensor) -> torch.Tensor:
        spectrum = torch.fft.rfft(fields.to(torch.float64), n=self.nlon, dim=-1, norm="forward")
        return torch.einsum("mlk,...km->...lm", self.analysis, spectrum[..., : self.mmax])
