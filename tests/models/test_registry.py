"""Every registered model: forward, backward, no NaN; defaults follow the grid; bad configs are refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fno_forecast.data.schema import GridInfo
from fno_forecast.errors import ConfigError
from fno_forecast.models.registry import (
    FNOConfig,
    SFNOConfig,
    build_network,
    model_config_from_dict,
    model_names,
    resolve_defaults,
    tensor_state_dict,
)

REGIONAL = GridInfo.from_arrays(np.linspace(75.0, 15.0, 13), np.linspace(200.0, 330.0, 27))
GLOBAL = GridInfo.from_arrays(np.linspace(90.0, -90.0, 17), np.arange(32) * 360.0 / 32)

SWEEP = [
    ("fno", FNOConfig(hidden_channels=8, n_layers=2, n_modes_lat=4, n_modes_lon=8), REGIONAL),
    ("fno", FNOConfig(hidden_channels=8, n_layers=2, factorization="tucker", rank=0.5), REGIONAL),
    ("fno", FNOConfig(hidden_channels=8, n_layers=2), GLOBAL),
    ("sfno", SFNOConfig(hidden_channels=8, n_layers=2, n_modes_lat=8, n_modes_lon=16), GLOBAL),
]


def test_sweep_covers_every_registered_model() -> None:
    assert {name for name, _, _ in SWEEP} == set(model_names())


@pytest.mark.parametrize(("name", "config", "grid"), SWEEP, ids=lambda v: getattr(v, "nlat", v))
def test_forward_backward_no_nan(name: str, config: FNOConfig | SFNOConfig, grid: GridInfo) -> None:
    torch.manual_seed(0)
    net = build_network(name, config, in_channels=5, out_channels=3, grid=grid)
    x = torch.randn(2, 5, grid.nlat, grid.nlon)
    y = net(x)
    assert y.shape == (2, 3, grid.nlat, grid.nlon)
    assert torch.isfinite(y).all()
    y.square().mean().backward()
    grads = [p.grad for p in net.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0


@pytest.mark.parametrize(("name", "config", "grid"), SWEEP[:1] + SWEEP[3:])
def test_bf16_autocast_keeps_spectral_transform_in_fp32(name: str, config, grid: GridInfo) -> None:
    torch.manual_seed(0)
    net = build_network(name, config, in_channels=5, out_channels=3, grid=grid)
    x = torch.randn(2, 5, grid.nlat, grid.nlon)
    seen: list[torch.dtype] = []
    conv = net.fno_blocks.convs[0]
    handle = conv.register_forward_hook(lambda module, inputs, output: seen.append(output.dtype))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = net(x)
    handle.remove()
    assert seen == [torch.float32]
    assert torch.isfinite(y.float()).all()
    with torch.no_grad():
        reference = net(x)
    assert torch.allclose(y.float(), reference, atol=0.1 * float(reference.abs().max()) + 1e-3)


def test_regional_grid_is_padded_and_global_longitude_is_not() -> None:
    regional = resolve_defaults(FNOConfig(), REGIONAL)
    global_ = resolve_defaults(FNOConfig(), GLOBAL)
    assert regional.domain_padding == 0.125
    assert global_.domain_padding == 0.0
    assert (regional.n_modes_lat, regional.n_modes_lon) == (6, 13)
    assert regional.hidden_channels == 32
    net = build_network(
        "fno", FNOConfig(hidden_channels=4, n_layers=1), in_channels=1, out_channels=1, grid=REGIONAL
    )
    padded = net.domain_padding.pad(torch.zeros(1, 4, REGIONAL.nlat, REGIONAL.nlon))
    assert padded.shape[-2] > REGIONAL.nlat and padded.shape[-1] > REGIONAL.nlon


def test_regional_padding_stops_wraparound() -> None:
    """A west-edge impulse must not leak to the east edge more through padding than without it."""
    torch.manual_seed(0)
    x = torch.zeros(1, 1, REGIONAL.nlat, REGIONAL.nlon)
    x[..., :, 0] = 1.0
    leak = {}
    for padding in (0.0, 0.5):
        torch.manual_seed(1)
        config = FNOConfig(
            hidden_channels=8, n_layers=1, domain_padding=padding, n_modes_lat=6, n_modes_lon=13
        )
        net = build_network("fno", config, in_channels=1, out_channels=1, grid=REGIONAL)
        with torch.no_grad():
            base = net(torch.zeros_like(x))
            response = (net(x) - base).abs()
        leak[padding] = float(response[..., -1].mean() / response[..., 0].mean())
    assert leak[0.5] < leak[0.0]


def test_sfno_refuses_regional_grid() -> None:
    with pytest.raises(ConfigError, match="sfno: needs a global grid"):
        build_network("sfno", SFNOConfig(hidden_channels=4), in_channels=1, out_channels=1, grid=REGIONAL)


def test_unknown_model_and_key_are_named() -> None:
    with pytest.raises(ConfigError, match="unknown model 'afno'"):
        model_config_from_dict("afno", {})
    with pytest.raises(ConfigError, match="unknown key\\(s\\) hidden"):
        model_config_from_dict("fno", {"hidden": 4})
    with pytest.raises(ConfigError, match="factorization"):
        FNOConfig(factorization="cp")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="n_layers"):
        SFNOConfig(n_layers=0)


def test_tensor_state_dict_has_only_tensors() -> None:
    net = build_network(
        "fno", FNOConfig(hidden_channels=4, n_layers=1), in_channels=1, out_channels=1, grid=REGIONAL
    )
    state = tensor_state_dict(net)
    assert state and all(isinstance(v, torch.Tensor) for v in state.values())
    assert "_metadata" not in state
