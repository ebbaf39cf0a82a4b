"""A faster form of neuraloperator's `SphericalConv` (the SFNO's layer): the same parameters and outputs.

`SphericalConv.forward` runs torch-harmonics' `RealSHT` (a full `rfft` over longitude, then two einsums
over latitude for the real and imaginary parts, written into a zero-filled complex tensor), contracts
the coefficients with its complex weights through tensorly's einsum (one complex matrix per degree,
which the CPU runs as many small products, plus complex copies), and runs `InverseRealSHT` (two einsums
and an `irfft`). In a `torch.profiler` trace of a CPU training step of the SFNO (33 x 64 grid, width
32, batch 16) complex batched products and copies took about half the time. `TruncatedSphericalConv`
computes the same operator as five real products, all batched: a DFT along longitude restricted to the
kept orders, the Legendre analysis (the library's own quadrature weights, one product per order with
real and imaginary parts in one batch), the channel contraction (one product per degree with the
complex weights as a real 2 x 2 block matrix), the Legendre synthesis (the library's polynomials) and
the inverse DFT. torch-harmonics has no such fused form, hence this class.

Only the case the project builds takes the fast path (dense weights, not separable, same input and
output grid, no resolution scaling, float32); every other case runs neuraloperator's own code.
`tests/models/test_fast_spherical.py` checks outputs and gradients against neuraloperator's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from neuralop.layers.spherical_convolution import SphericalConv
from tltorch.factorized_tensors.complex_factorized_tensors import ComplexDenseTensor

from fno_forecast.models.fast_layers import PerGridBases, lon_dft


@dataclass(frozen=True)
class SHTBases:
    """The real matrices of `TruncatedSphericalConv` on one grid.

    `lon_forward` (W, 2M): longitude samples to (re, im) of the M kept orders, `2 pi rfft(norm="forward")`
    as `RealSHT` scales it. `analysis` (M, H, L): per order, latitude samples to degrees (`RealSHT`'s
    weights). `synthesis` (M, L, H): per order, degrees to latitude samples (`InverseRealSHT`'s
    polynomials). `lon_inverse` (2M, W): `irfft(n=W, norm="forward")` of the M orders.
    """

    lon_forward: torch.Tensor
    analysis: torch.Tensor
    synthesis: torch.Tensor
    lon_inverse: torch.Tensor


def sht_bases(
    *,
    n_lat: int,
    n_lon: int,
    degrees: int,
    orders: int,
    grid: str,
    norm: str,
    dtype: torch.dtype,
    device: Any,
) -> SHTBases:
    """The bases for `degrees` x `orders` coefficients of an `n_lat` x `n_lon` grid, from torch-harmonics'
    own transforms (so the quadrature and normalisation are the library's)."""
    from torch_harmonics import InverseRealSHT, RealSHT

    forward = RealSHT(n_lat, n_lon, lmax=degrees, mmax=orders, grid=grid, norm=norm)
    inverse = InverseRealSHT(n_lat, n_lon, lmax=degrees, mmax=orders, grid=grid, norm=norm)
    lon_forward, lon_inverse = lon_dft(n_lon, orders, forward_scale=2 * math.pi / n_lon, inverse_scale=1.0)
    analysis = forward.weights.to(torch.float64).permute(0, 2, 1)  # (M, H, L)
    synthesis = inverse.pct.to(torch.float64)  # (M, L, H)
    return SHTBases(
        *(
            m.to(device=device, dtype=dtype).contiguous()
            for m in (lon_forward, analysis, synthesis, lon_inverse)
        )
    )


def block_weights(weight: torch.Tensor) -> torch.Tensor:
    """`(L, 2 C, 2 O)` real blocks `[[Wr, Wi], [-Wi, Wr]]` of complex weights `(C, O, L)`: a row `[re |
    im]` of inputs times a block is `[re | im]` of the complex product."""
    real, imag = weight.real.permute(2, 0, 1), weight.imag.permute(2, 0, 1)
    top = torch.cat([real, imag], dim=2)
    bottom = torch.cat([-imag, real], dim=2)
    return torch.cat([top, bottom], dim=1)


class TruncatedSphericalConv(PerGridBases, SphericalConv):
    """neuraloperator's `SphericalConv` computed with real batched products (see the module docstring)."""

    def _orders(self) -> tuple[int, int]:
        """(degrees, orders) kept, as `SphericalConv.forward` asks its transforms for them."""
        return int(self.n_modes[0]), int(self.n_modes[1]) // 2

    def uses_fast_path(self, x: torch.Tensor, output_shape: Any = None) -> bool:
        """Whether `forward(x)` takes the real-product path (else neuraloperator's own)."""
        if (
            self.order != 2
            or self.separable
            or output_shape is not None
            or self.resolution_scaling_factor is not None
            or self.sht_grids[0] != self.sht_grids[1]
            or not isinstance(self.weight, ComplexDenseTensor)
            or x.dtype != torch.float32
            or self.weight.to_tensor().dtype != torch.complex64
        ):
            return False
        degrees, orders = self._orders()
        n_lat, n_lon = x.shape[-2:]
        return 0 < degrees <= n_lat and 0 < orders <= n_lon // 2 + 1 and self.weight.shape[2] >= degrees

    def _build_bases(self, n_lat: int, n_lon: int, *, dtype: torch.dtype, device: torch.device) -> SHTBases:
        degrees, orders = self._orders()
        return sht_bases(
            n_lat=n_lat,
            n_lon=n_lon,
            degrees=degrees,
            orders=orders,
            grid=self.sht_grids[0],
            norm=self.sht_norm,
            dtype=dtype,
            device=device,
        )

    def forward(self, x: torch.Tensor, output_shape: Any = None) -> torch.Tensor:
        if not self.uses_fast_path(x, output_shape):
            return super().forward(x, output_shape=output_shape)
        batch, channels, n_lat, n_lon = x.shape
        degrees, orders = self._orders()
        out_channels = self.out_channels
        bases = self._bases_for(x)
        rows = batch * channels

        # longitude: (B C H) x W -> (re/im, M); then one (rows x H) @ (H x L) product per order
        z = (x.reshape(-1, n_lon) @ bases.lon_forward).view(rows, n_lat, 2, orders)
        z = z.permute(3, 0, 2, 1).reshape(orders, rows * 2, n_lat)
        coefficients = torch.bmm(z, bases.analysis)  # (M, B C re/im, L)
        # channels: one ((B M) x (re/im C)) @ ((re/im C) x (re/im O)) product per degree
        c = coefficients.view(orders, batch, channels, 2, degrees).permute(4, 1, 0, 3, 2)
        c = c.reshape(degrees, batch * orders, 2 * channels)
        weight = block_weights(self.weight.to_tensor()[:, :, :degrees])
        product = torch.bmm(c, weight).view(degrees, batch, orders, 2, out_channels)
        # latitude: one ((B O re/im) x L) @ (L x H) product per order; then the inverse DFT
        p = product.permute(2, 1, 4, 3, 0).reshape(orders, batch * out_channels * 2, degrees)
        s = torch.bmm(p, bases.synthesis).view(orders, batch, out_channels, 2, n_lat)
        s = s.permute(1, 2, 4, 3, 0).reshape(-1, 2 * orders)  # (B O H) x (re/im, M)
        out = (s @ bases.lon_inverse).view(batch, out_channels, n_lat, n_lon)
        return out if self.bias is None else out + self.bias
