"""`TruncatedSphericalConv` computes neuraloperator's `SphericalConv`: same outputs and gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from neuralop.layers.spherical_convolution import SphericalConv

from fno_forecast.data.schema import GridInfo
from fno_forecast.models.fast_spherical import TruncatedSphericalConv, block_weights
from fno_forecast.models.registry import SFNOConfig, build_network


def _pair(
    modes: tuple[int, int], grid: str, **kwargs: object
) -> tuple[SphericalConv, TruncatedSphericalConv]:
    torch.manual_seed(0)
    library = SphericalConv(6, 5, modes, factorization="dense", sht_grids=grid, **kwargs)
    fast = TruncatedSphericalConv(6, 5, modes, factorization="dense", sht_grids=grid, **kwargs)
    fast.load_state_dict(library.state_dict())
    return library, fast


@pytest.mark.parametrize(
    ("shape", "modes", "grid"),
    [
        ((33, 64), (16, 32), "equiangular"),  # the SFNO's default modes on a 5.6-degree grid
        ((19, 36), (9, 18), "equiangular"),  # the monthly suite set's grid
        ((32, 64), (16, 32), "legendre-gauss"),  # a Gaussian grid
        ((33, 64), (33, 66), "equiangular"),  # every order up to Nyquist
        ((17, 30), (10, 12), "equiangular"),  # odd sizes, fewer orders than degrees
    ],
)
def test_outputs_and_gradients_match_neuraloperator(
    shape: tuple[int, int], modes: tuple[int, int], grid: str
) -> None:
    library, fast = _pair(modes, grid)
    x = torch.randn(3, 6, *shape, dtype=torch.float32, requires_grad=True)
    assert fast.uses_fast_path(x)
    expected, got = library(x), fast(x)
    scale = float(expected.detach().abs().max())
    assert float((got - expected).detach().abs().max()) < 2e-6 * scale
    upstream = torch.randn_like(expected)
    want = torch.autograd.grad((expected * upstream).sum(), [x, *library.parameters()])
    have = torch.autograd.grad((got * upstream).sum(), [x, *fast.parameters()])
    for a, b in zip(want, have, strict=True):
        assert float((a - b).abs().max()) < 2e-6 * float(a.abs().max())


def test_other_cases_run_neuraloperators_code() -> None:
    library, fast = _pair((16, 32), "equiangular", bias=False)
    x = torch.randn(2, 6, 33, 64)
    assert not fast.uses_fast_path(x.double())
    assert not fast.uses_fast_path(x, output_shape=(33, 64))
    torch.testing.assert_close(fast(x), library(x))  # without a bias too
    separable = TruncatedSphericalConv(6, 6, (16, 32), factorization="dense", separable=True)
    assert not separable.uses_fast_path(torch.randn(2, 6, 33, 64))
    regridded = TruncatedSphericalConv(
        6, 5, (16, 32), factorization="dense", sht_grids=["equiangular", "legendre-gauss"]
    )
    assert not regridded.uses_fast_path(torch.randn(2, 6, 33, 64))


def test_block_weights_multiply_as_complex_numbers() -> None:
    weight = torch.randn(4, 3, 2, dtype=torch.complex64)
    coefficients = torch.randn(5, 2, 4, dtype=torch.complex64)  # (rows, degree, channel)
    expected = torch.einsum("rlc,col->rlo", coefficients, weight)
    rows = torch.cat([coefficients.real, coefficients.imag], dim=-1).transpose(0, 1)  # (L, rows, 2C)
    product = torch.bmm(rows, block_weights(weight))  # (L, rows, 2O)
    got = torch.complex(product[..., :3], product[..., 3:]).transpose(0, 1)
    torch.testing.assert_close(got, expected)


def test_the_sfno_is_built_on_the_fast_layer_and_computes_the_same() -> None:
    grid = GridInfo.from_arrays(np.linspace(90.0, -90.0, 19), np.arange(36) * 10.0)
    config = SFNOConfig(hidden_channels=8, n_layers=2)
    torch.manual_seed(0)
    fast = build_network("sfno", config, in_channels=5, out_channels=2, grid=grid)
    torch.manual_seed(0)
    library = build_network("sfno", config, in_channels=5, out_channels=2, grid=grid, fast_layers=False)
    convs = [m for m in fast.modules() if isinstance(m, SphericalConv)]
    assert convs and all(isinstance(m, TruncatedSphericalConv) for m in convs)
    assert set(fast.state_dict()) == set(library.state_dict())
    library.load_state_dict(fast.state_dict())
    x = torch.randn(2, 5, 19, 36)
    torch.testing.assert_close(fast(x), library(x), rtol=1e-5, atol=1e-5)
