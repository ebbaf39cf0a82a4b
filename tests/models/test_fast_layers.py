"""The fast layers compute what neuraloperator's compute: outputs, input and weight gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from neuralop.layers.spectral_convolution import SpectralConv
from torch import nn

from fno_forecast.data.schema import GridInfo
from fno_forecast.models.fast_layers import (
    PointwiseConv1d,
    TruncatedSpectralConv,
    dft_bases,
    use_pointwise_convs,
)
from fno_forecast.models.registry import FNOConfig, build_network, tensor_state_dict


def _pair(*, channels: int, out_channels: int, n_modes: tuple[int, int], fft_norm: str = "forward"):
    torch.manual_seed(0)
    reference = SpectralConv(channels, out_channels, n_modes=n_modes, fft_norm=fft_norm)
    fast = TruncatedSpectralConv(channels, out_channels, n_modes=n_modes, fft_norm=fft_norm)
    fast.load_state_dict(reference.state_dict())
    return reference, fast


def _outputs_and_grads(conv: nn.Module, x: torch.Tensor, upstream: torch.Tensor):
    x = x.clone().requires_grad_(True)
    conv.zero_grad()
    out = conv(x)
    out.backward(upstream)
    weight_grad = conv.weight.tensor.grad.clone()
    return out.detach(), x.grad.clone(), weight_grad


@pytest.mark.parametrize(
    ("shape", "n_modes"),
    [
        ((32, 72), (12, 24)),  # the NCEP grid with FFT-friendly padding
        ((31, 67), (12, 24)),  # neuraloperator's own padding: odd sizes on both axes
        ((25, 53), (7, 10)),  # odd numbers of kept modes
        ((16, 20), (16, 20)),  # every mode, Nyquist included
        ((15, 9), (15, 9)),  # every mode of an odd grid
    ],
)
def test_truncated_spectral_conv_matches_neuralop(shape: tuple[int, int], n_modes: tuple[int, int]) -> None:
    reference, fast = _pair(channels=5, out_channels=3, n_modes=n_modes)
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(4, 5, *shape, generator=generator)
    upstream = torch.randn(4, 3, *shape, generator=generator)
    assert fast.uses_fast_path(x)

    out_ref, dx_ref, dw_ref = _outputs_and_grads(reference, x, upstream)
    out_fast, dx_fast, dw_fast = _outputs_and_grads(fast, x, upstream)

    scale = out_ref.abs().max()
    assert scale > 0.1
    torch.testing.assert_close(out_fast, out_ref, rtol=0, atol=2e-5 * float(scale))
    torch.testing.assert_close(dx_fast, dx_ref, rtol=0, atol=2e-5 * float(dx_ref.abs().max()))
    torch.testing.assert_close(dw_fast, dw_ref, rtol=0, atol=2e-5 * float(dw_ref.abs().max()))


@pytest.mark.parametrize("fft_norm", ["backward", "ortho"])
def test_truncated_spectral_conv_other_normalisations(fft_norm: str) -> None:
    reference, fast = _pair(channels=3, out_channels=3, n_modes=(6, 8), fft_norm=fft_norm)
    x = torch.randn(2, 3, 12, 18, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = reference(x)
        torch.testing.assert_close(fast(x), expected, rtol=0, atol=2e-5 * float(expected.abs().max()))


def test_modes_beyond_the_grid_fall_back_to_neuralop() -> None:
    reference, fast = _pair(channels=2, out_channels=2, n_modes=(12, 24))
    x = torch.randn(1, 2, 8, 16, generator=torch.Generator().manual_seed(3))
    assert not fast.uses_fast_path(x)  # 12 latitude modes on 8 rows, 13 rfft modes of 9
    with torch.no_grad():
        torch.testing.assert_close(fast(x), reference(x))


def test_dft_bases_invert_each_other_on_every_mode() -> None:
    """Forward then inverse over all modes of an even grid is the identity (norm 'forward')."""
    bases = dft_bases(
        n_lat=8, n_lon=10, modes_lat=8, modes_lon=6, norm="forward", dtype=torch.float64, device="cpu"
    )
    field = torch.randn(8, 10, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    z = (field @ bases.lon_forward).view(8, 2, 6).permute(2, 1, 0).reshape(6, 16)
    y = (z @ bases.lat_forward).view(6, 2, 8)
    # multiply by a unit weight: (x re/im, weight re/im) products with weight = 1 + 0i
    products = torch.zeros(6, 2, 2, 8, dtype=torch.float64)
    products[:, :, 0] = y
    s = (products.reshape(6, 32) @ bases.lat_inverse).view(6, 2, 8)
    back = s.permute(2, 1, 0).reshape(8, 12) @ bases.lon_inverse
    torch.testing.assert_close(back, field)


def test_pointwise_conv_matches_conv1d() -> None:
    torch.manual_seed(0)
    for bias in (True, False):
        conv = nn.Conv1d(6, 4, 1, bias=bias)
        fast = PointwiseConv1d(6, 4, 1, bias=bias)
        fast.load_state_dict(conv.state_dict())
        x = torch.randn(3, 6, 50, requires_grad=True)
        x_fast = x.detach().clone().requires_grad_(True)
        upstream = torch.randn(3, 4, 50)
        conv(x).backward(upstream)
        fast(x_fast).backward(upstream)
        torch.testing.assert_close(fast(x_fast), conv(x))
        torch.testing.assert_close(x_fast.grad, x.grad)
        torch.testing.assert_close(fast.weight.grad, conv.weight.grad)


def test_use_pointwise_convs_keeps_parameters_and_draws_no_random_numbers() -> None:
    torch.manual_seed(0)
    network = nn.Sequential(
        nn.Conv1d(3, 8, 1), nn.GELU(), nn.Sequential(nn.Conv1d(8, 2, 1)), nn.Conv1d(2, 2, 3)
    )
    before = {k: v.clone() for k, v in network.state_dict().items()}
    state = torch.get_rng_state()
    assert use_pointwise_convs(network) == 2
    assert torch.equal(torch.get_rng_state(), state)
    assert type(network[0]) is PointwiseConv1d and type(network[2][0]) is PointwiseConv1d
    assert type(network[3]) is nn.Conv1d  # kernel 3 stays a convolution
    after = network.state_dict()
    assert after.keys() == before.keys()
    assert all(torch.equal(after[k], before[k]) for k in before)


def test_fast_fno_is_neuralops_fno() -> None:
    """The project's FNO with and without fast layers: same parameters, same outputs and gradients."""
    grid = GridInfo(lat=tuple(np.linspace(75.0, 15.0, 25)), lon=tuple(np.linspace(200.0, 330.0, 53)))
    config = FNOConfig(hidden_channels=16, n_modes_lat=12, n_modes_lon=24, domain_padding=0.125)
    torch.manual_seed(0)
    stock = build_network("fno", config, in_channels=5, out_channels=2, grid=grid, fast_layers=False)
    torch.manual_seed(0)
    fast = build_network("fno", config, in_channels=5, out_channels=2, grid=grid)
    stock_state, fast_state = tensor_state_dict(stock), tensor_state_dict(fast)
    assert stock_state.keys() == fast_state.keys()
    for key, value in stock_state.items():
        assert torch.equal(fast_state[key], value), key  # same seed, same initial weights

    x = torch.randn(3, 5, 25, 53, generator=torch.Generator().manual_seed(5))
    losses = []
    for network in (stock, fast):
        network.zero_grad()
        out = network(x)
        loss = (out**2).mean()
        loss.backward()
        losses.append((out.detach(), {n: p.grad.clone() for n, p in network.named_parameters()}))
    (out_stock, grads_stock), (out_fast, grads_fast) = losses
    torch.testing.assert_close(out_fast, out_stock, rtol=0, atol=1e-5 * float(out_stock.abs().max()))
    for name, grad in grads_stock.items():
        torch.testing.assert_close(
            grads_fast[name], grad, rtol=0, atol=1e-4 * float(grad.abs().max()) + 1e-12, msg=name
        )
