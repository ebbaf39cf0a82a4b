"""FFT-friendly domain padding: sizes, exact crop, and the same network output as an unpadded copy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fno_forecast.data.schema import GridInfo
from fno_forecast.models.padding import FastFFTPadding, next_fast_size, padded_size
from fno_forecast.models.registry import FNOConfig, build_network

NCEP = GridInfo.from_arrays(np.linspace(75.0, 15.0, 25), np.linspace(200.0, 330.0, 53))


@pytest.mark.parametrize(
    ("n", "expected"), [(1, 1), (7, 8), (31, 32), (37, 40), (67, 72), (79, 80), (97, 100), (121, 125)]
)
def test_next_fast_size_is_the_smallest_5_smooth_number(n: int, expected: int) -> None:
    assert next_fast_size(n) == expected


def test_padded_size_keeps_at_least_the_fraction_per_side() -> None:
    assert padded_size(25, 0.125) == 32
    assert padded_size(53, 0.125) == 72
    assert padded_size(53, 0.25) == 80  # neuraloperator's DomainPadding gives 79, a prime
    assert padded_size(53, 0.0) == 53
    for size in range(4, 200):
        for fraction in (0.1, 0.125, 0.25):
            assert padded_size(size, fraction) >= size + 2 * round(fraction * size)


def test_pad_then_unpad_is_the_identity_and_pads_with_zeros() -> None:
    padding = FastFFTPadding((0.125, 0.125))
    x = torch.randn(2, 3, 25, 53)
    padded = padding.pad(x)
    assert padded.shape == (2, 3, 32, 72)
    assert torch.equal(padding.unpad(padded), x)
    assert float(padded.abs().sum()) == pytest.approx(float(x.abs().sum()), rel=1e-6)
    assert torch.equal(padded[..., :3, :], torch.zeros_like(padded[..., :3, :]))


def test_unpad_of_an_unknown_shape_is_refused() -> None:
    padding = FastFFTPadding((0.125, 0.0))
    with pytest.raises(ValueError, match="no padding was applied"):
        padding.unpad(torch.zeros(1, 1, 7, 9))


def test_fno_uses_fft_friendly_padding_unless_disabled() -> None:
    fast = build_network(
        "fno",
        FNOConfig(hidden_channels=4, n_layers=1, domain_padding=0.125),
        in_channels=2,
        out_channels=1,
        grid=NCEP,
    )
    exact = build_network(
        "fno",
        FNOConfig(hidden_channels=4, n_layers=1, domain_padding=0.125, fft_padding=False),
        in_channels=2,
        out_channels=1,
        grid=NCEP,
    )
    assert isinstance(fast.domain_padding, FastFFTPadding)
    assert fast.domain_padding.pad(torch.zeros(1, 4, 25, 53)).shape[-2:] == (32, 72)
    assert exact.domain_padding.pad(torch.zeros(1, 4, 25, 53)).shape[-2:] == (31, 67)
    exact.load_state_dict(fast.state_dict())  # same weights: padding is not a parameter
    x = torch.randn(2, 2, 25, 53)
    with torch.no_grad():
        assert fast(x).shape == exact(x).shape == (2, 1, 25, 53)
