"""Faster forms of two neuraloperator layers: the same parameters, the same outputs, less work.

In a `torch.profiler` trace of one CPU training step of the NCEP FNO (batch 16, 32 x 72 padded grid),
`SpectralConv` and the kernel-1 `Conv1d`s of the channel MLPs and skips took most of the time.
neuraloperator has no faster option for either, hence these two classes (`python
benchmarks/train_throughput.py` shows the gain against neuraloperator's own FNO):

- `SpectralConv.forward` takes a full 2-D FFT, shifts it, contracts the kept modes with a complex einsum
  and writes them into a zero-filled spectrum for the inverse FFT. The FNO keeps 12 x 13 of the 32 x 37
  modes, and on the CPU the complex batched product of the contraction (and its backward) runs one small
  matrix at a time. `TruncatedSpectralConv` computes the same operator as five real matrix products: a
  DFT along longitude restricted to the kept modes, one along latitude with real and imaginary parts
  folded into one matrix, the per-mode channel contraction as one batched product, and the two inverse
  DFTs. It keeps neuraloperator's weight tensor (so state dicts and bundles are interchangeable) and its
  conventions, including where the inverse puts the kept latitude modes on odd-sized grids.
- `nn.Conv1d` with a kernel of 1 goes through oneDNN's convolution, whose backward is several times
  slower than the batched matrix product it amounts to; `PointwiseConv1d` is that product.

Only the cases the project builds take the fast path (dense weights, real 2-D data, kept modes within
the grid, no resolution scaling, full precision); every other case runs neuraloperator's own code.
`tests/models/test_fast_layers.py` checks outputs and gradients against neuraloperator's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from neuralop.layers.spectral_convolution import SpectralConv
from tltorch.factorized_tensors import DenseTensor
from torch import nn


@dataclass(frozen=True)
class DFTBases:
    """Real DFT matrices for one grid, applied as right-multiplications.

    `lon_forward` (W, 2M): longitude samples to (re, im) of the first M rfft modes.
    `lat_forward` (2H, 2K): (re, im) x latitude samples to (re, im) x the K kept latitude modes.
    `lat_inverse` (4K, 2H): (x re/im, weight re/im) x K products to (re, im) x latitude samples; it also
    does the complex multiply's combination (re = rr - ii, im = ri + ir).
    `lon_inverse` (2M, W): (re, im) x M modes to longitude samples, as `irfft(n=W)` does.
    """

    lon_forward: torch.Tensor
    lat_forward: torch.Tensor
    lat_inverse: torch.Tensor
    lon_inverse: torch.Tensor


def _norm_scales(norm: str, n: int) -> tuple[float, float]:
    """(forward, inverse) factors of `torch.fft` normalisation `norm` along a dimension of size n."""
    if norm == "forward":
        return 1.0 / n, 1.0
    if norm == "backward":
        return 1.0, 1.0 / n
    if norm == "ortho":
        return 1.0 / math.sqrt(n), 1.0 / math.sqrt(n)
    raise ValueError(f"fft_norm: expected 'forward', 'backward' or 'ortho', got {norm!r}")


def lon_dft(
    n_lon: int, modes: int, *, forward_scale: float, inverse_scale: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Float64 `(W, 2M)` and `(2M, W)`: the first `modes` rfft modes along longitude as [real | imag]
    columns (times `forward_scale`), and back as `irfft(n=W)` makes them (times `inverse_scale`)."""
    f64 = torch.float64
    angle = 2 * math.pi * torch.outer(torch.arange(n_lon, dtype=f64), torch.arange(modes, dtype=f64)) / n_lon
    forward = torch.cat([torch.cos(angle), -torch.sin(angle)], dim=1) * forward_scale
    # irfft counts each mode between 0 and Nyquist twice (its conjugate twin); the imaginary parts of
    # the 0 and Nyquist modes drop out because their sines vanish on the grid.
    twice = torch.full((modes,), 2.0, dtype=f64)
    twice[0] = 1.0
    if n_lon % 2 == 0 and modes == n_lon // 2 + 1:
        twice[-1] = 1.0
    inverse = torch.cat([twice[:, None] * torch.cos(angle.T), -twice[:, None] * torch.sin(angle.T)])
    return forward, inverse * inverse_scale


def dft_bases(
    *, n_lat: int, n_lon: int, modes_lat: int, modes_lon: int, norm: str, dtype: torch.dtype, device: Any
) -> DFTBases:
    """The matrices `TruncatedSpectralConv` uses on an `n_lat` x `n_lon` grid (built in float64).

    Latitude modes follow neuraloperator's `SpectralConv`: after an fftshift it keeps the `modes_lat`
    indices around the centre, so the forward transform reads frequencies `-(K//2) .. K - K//2 - 1`; its
    inverse applies `fftshift` (not `ifftshift`) before `irfftn`, which on an odd-sized grid maps each
    kept mode one frequency lower. Both are reproduced so that the two layers agree on every grid.
    """
    f64 = torch.float64
    fwd_lon, inv_lon = _norm_scales(norm, n_lon)
    fwd_lat, inv_lat = _norm_scales(norm, n_lat)

    lon_forward, lon_inverse = lon_dft(n_lon, modes_lon, forward_scale=fwd_lon, inverse_scale=inv_lon)

    kept = torch.arange(modes_lat) - modes_lat // 2
    read = kept.to(f64)
    written = ((kept + 2 * (n_lat // 2)) % n_lat).to(f64)
    t_lat = torch.arange(n_lat, dtype=f64)
    cos_f, sin_f = (fn(2 * math.pi * torch.outer(t_lat, read) / n_lat) for fn in (torch.cos, torch.sin))
    lat_forward = (
        torch.cat([torch.cat([cos_f, -sin_f], dim=1), torch.cat([sin_f, cos_f], dim=1)], dim=0) * fwd_lat
    )  # rows (re/im, H), columns (re/im, K)
    angle_i = 2 * math.pi * torch.outer(written, t_lat) / n_lat  # (K, H)
    cos_i, sin_i = torch.cos(angle_i), torch.sin(angle_i)
    lat_inverse = torch.zeros(2, 2, modes_lat, 2, n_lat, dtype=f64)
    for rx, rw, sign in ((0, 0, 1.0), (1, 1, -1.0)):  # real part of the product: rr - ii
        lat_inverse[rx, rw, :, 0] = sign * cos_i
        lat_inverse[rx, rw, :, 1] = sign * sin_i
    for rx, rw in ((0, 1), (1, 0)):  # imaginary part: ri + ir
        lat_inverse[rx, rw, :, 0] = -sin_i
        lat_inverse[rx, rw, :, 1] = cos_i
    lat_inverse = lat_inverse.reshape(4 * modes_lat, 2 * n_lat) * inv_lat

    return DFTBases(
        *(m.to(device=device, dtype=dtype) for m in (lon_forward, lat_forward, lat_inverse, lon_inverse))
    )


class PerGridBases:
    """Mixin for a fast layer: its transform matrices (`_build_bases`) built once per grid, dtype and
    device, and kept."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._bases: dict[tuple[int, int, torch.dtype, torch.device], Any] = {}

    def _build_bases(self, n_lat: int, n_lon: int, *, dtype: torch.dtype, device: torch.device) -> Any:
        raise NotImplementedError

    def _bases_for(self, x: torch.Tensor) -> Any:
        n_lat, n_lon = x.shape[-2:]
        key = (n_lat, n_lon, x.dtype, x.device)
        if key not in self._bases:
            self._bases[key] = self._build_bases(n_lat, n_lon, dtype=x.dtype, device=x.device)
        return self._bases[key]


class TruncatedSpectralConv(PerGridBases, SpectralConv):
    """neuraloperator's `SpectralConv` computed with truncated real DFTs (see the module docstring)."""

    def uses_fast_path(self, x: torch.Tensor, output_shape: Any = None) -> bool:
        """Whether `forward(x)` takes the truncated-DFT path (else neuraloperator's own)."""
        if (
            self.complex_data
            or self.order != 2
            or self.separable
            or output_shape is not None
            or self.resolution_scaling_factor is not None
            or self.fno_block_precision != "full"
            or not isinstance(self.weight, DenseTensor)
            or list(self.n_modes) != list(self.max_n_modes)
            or x.dtype != torch.float32
            or self.weight.to_tensor().dtype != torch.complex64
        ):
            return False
        n_lat, n_lon = x.shape[-2:]
        return self.n_modes[0] <= n_lat and self.n_modes[1] <= n_lon // 2 + 1

    def _build_bases(self, n_lat: int, n_lon: int, *, dtype: torch.dtype, device: torch.device) -> DFTBases:
        return dft_bases(
            n_lat=n_lat,
            n_lon=n_lon,
            modes_lat=self.n_modes[0],
            modes_lon=self.n_modes[1],
            norm=self.fft_norm,
            dtype=dtype,
            device=device,
        )

    def forward(self, x: torch.Tensor, output_shape: Any = None) -> torch.Tensor:
        if not self.uses_fast_path(x, output_shape):
            return super().forward(x, output_shape=output_shape)
        batch, channels, n_lat, n_lon = x.shape
        modes_lat, modes_lon = self.n_modes
        out_channels = self.out_channels
        bases = self._bases_for(x)

        z = (x.reshape(-1, n_lon) @ bases.lon_forward).view(batch * channels, n_lat, 2, modes_lon)
        z = z.permute(0, 3, 2, 1).contiguous().view(-1, 2 * n_lat)  # (B C M) x (re/im, H)
        y = (z @ bases.lat_forward).view(batch, channels, modes_lon, 2, modes_lat)
        # one (re/im x batch) x channels matrix per kept mode, times the weights' [real | imag] halves
        modes = y.permute(2, 4, 3, 0, 1).contiguous().view(modes_lon * modes_lat, 2 * batch, channels)
        weight = torch.view_as_real(self.weight.to_tensor())  # (C, O, K, M, re/im)
        weight = weight.permute(3, 2, 0, 4, 1).contiguous().view(modes_lon * modes_lat, channels, -1)
        product = torch.bmm(modes, weight).view(modes_lon, modes_lat, 2, batch, 2, out_channels)
        product = product.permute(3, 5, 0, 2, 4, 1).contiguous().view(-1, 4 * modes_lat)
        s = (product @ bases.lat_inverse).view(batch, out_channels, modes_lon, 2, n_lat)
        s = s.permute(0, 1, 4, 3, 2).contiguous().view(-1, 2 * modes_lon)  # (B O H) x (re/im, M)
        out = (s @ bases.lon_inverse).view(batch, out_channels, n_lat, n_lon)
        return out if self.bias is None else out + self.bias


class PointwiseConv1d(nn.Conv1d):
    """`nn.Conv1d` with a kernel of 1, computed as one batched matrix product (same parameters)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3:
            return super().forward(x)
        weight = self.weight.squeeze(-1).expand(x.shape[0], -1, -1)
        if self.bias is None:
            return torch.bmm(weight, x)
        return torch.baddbmm(self.bias.view(1, -1, 1), weight, x)


def _is_pointwise(module: nn.Conv1d) -> bool:
    return (
        module.kernel_size == (1,)
        and module.stride == (1,)
        and module.padding == (0,)
        and module.dilation == (1,)
        and module.groups == 1
    )


def use_pointwise_convs(network: nn.Module) -> int:
    """Replace every kernel-1 `nn.Conv1d` in `network` by a `PointwiseConv1d` sharing its parameters.

    Returns how many were replaced. Draws no random numbers (the new modules are built on the meta
    device and given the old parameters), so training stays reproducible from the seed.
    """
    replaced = 0
    for parent in list(network.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is not nn.Conv1d or not _is_pointwise(child):
                continue
            fast = PointwiseConv1d(
                child.in_channels, child.out_channels, 1, bias=child.bias is not None, device="meta"
            )
            fast.weight = child.weight
            fast.bias = child.bias
            setattr(parent, name, fast)
            replaced += 1
    return replaced
