"""Domain padding to FFT-friendly sizes, a drop-in for neuraloperator's `DomainPadding`.

Regional grids are not periodic, so the FNO pads them with zeros before its FFTs. neuraloperator's
`DomainPadding` pads each side by `round(fraction * size)`; on the NCEP grid (25 x 53) with 25% that
gives 37 x 79, and 79 is prime: pocketfft (CPU) and cuFFT fall back to their slow Bluestein/generic
paths, which dominated a profile of one training step. This module pads each side by at least the same
fraction and then rounds the padded size up to the next 5-smooth number (2^a 3^b 5^c), where FFTs are
fast: 25 x 53 at 12.5% becomes 32 x 72. The extra zeros only widen the gap between the two edges.

It keeps neuraloperator's interface (`pad`, `unpad`), so the FNO itself is unchanged; neuraloperator has
no option for padded sizes, hence this small class instead of a fork.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def next_fast_size(n: int) -> int:
    """The smallest 5-smooth integer (only prime factors 2, 3 and 5) that is >= `n`."""
    if n < 1:
        raise ValueError(f"next_fast_size: expected n >= 1, got {n}")
    candidate = n
    while True:
        rest = candidate
        for prime in (2, 3, 5):
            while rest % prime == 0:
                rest //= prime
        if rest == 1:
            return candidate
        candidate += 1


def padded_size(size: int, fraction: float) -> int:
    """`size` plus `fraction` of it on each side, rounded up to a fast FFT size (no padding at 0)."""
    if fraction <= 0:
        return size
    return next_fast_size(size + 2 * round(fraction * size))


class FastFFTPadding(nn.Module):
    """Zero-pad `(B, C, *spatial)` to FFT-friendly sizes and crop back; `fractions` per spatial dim.

    The padding is split as evenly as possible between the two sides of each dimension (one more cell
    at the end when the total is odd). A fraction of 0 leaves that dimension alone (global longitudes).
    """

    def __init__(self, fractions: tuple[float, ...]) -> None:
        super().__init__()
        if any(f < 0 for f in fractions):
            raise ValueError(f"FastFFTPadding: fractions must be >= 0, got {fractions}")
        self.fractions = tuple(float(f) for f in fractions)
        self._crops: dict[tuple[int, ...], tuple[slice, ...]] = {}
        self._pads: dict[tuple[int, ...], list[int]] = {}

    def amounts(self, shape: tuple[int, ...]) -> list[tuple[int, int]]:
        """(before, after) padding per spatial dim for an unpadded spatial `shape`."""
        if len(shape) != len(self.fractions):
            raise ValueError(
                f"FastFFTPadding: {len(self.fractions)} fractions for {len(shape)} spatial dims {shape}"
            )
        result = []
        for size, fraction in zip(shape, self.fractions, strict=True):
            total = padded_size(size, fraction) - size
            result.append((total // 2, total - total // 2))
        return result

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        spatial = tuple(x.shape[2:])
        flat = self._pads.get(spatial)
        if flat is None:  # once per input shape, as neuraloperator's DomainPadding does
            amounts = self.amounts(spatial)
            padded_shape = tuple(s + a + b for s, (a, b) in zip(spatial, amounts, strict=True))
            self._crops[padded_shape] = tuple(
                slice(a, a + s) for s, (a, _) in zip(spatial, amounts, strict=True)
            )
            flat = self._pads[spatial] = [value for pair in reversed(amounts) for value in pair]
        return F.pad(x, flat, mode="constant") if any(flat) else x

    def unpad(self, x: torch.Tensor) -> torch.Tensor:
        key = tuple(x.shape[2:])
        if key not in self._crops:
            raise ValueError(f"FastFFTPadding.unpad: no padding was applied that gives spatial shape {key}")
        return x[(Ellipsis, *self._crops[key])]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pad(x)

    def extra_repr(self) -> str:
        return f"fractions={self.fractions}"
