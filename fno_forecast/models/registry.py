"""Named, typed model configurations on neuraloperator 2.0 and the one function that builds them.

Two families are registered:

- `fno`: `neuralop.models.FNO`, dense or Tucker-factorised spectral weights. Regional grids are not
  periodic, so the network pads them (domain padding) before its FFTs; without padding the FFT wraps
  Alaska into the Atlantic. Padded sizes are rounded up to FFT-friendly ones (`models.padding`).
  Global grids are periodic in longitude and need no padding there. Its spectral convolutions (and
  both models' kernel-1 convolutions) are `models.fast_layers`' forms of neuraloperator's: same
  weights, same function, faster.
- `sfno`: `neuralop.models.SFNO` on torch-harmonics spherical harmonics. It only makes sense on a
  global equiangular (poles included) or Gaussian grid, and refuses anything else with a `ConfigError`.

Every spectral convolution runs in fp32 even under bf16 autocast: cuFFT in half precision needs
power-of-two sizes, the CPU FFT has no bf16 at all, and the truncated DFTs sum tens of terms that bf16's
8-bit mantissa would blur. The lifting and projection MLPs and the kernel-1 convolutions keep autocast.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from fno_forecast.data.schema import GridInfo
from fno_forecast.errors import ConfigError
from fno_forecast.models.padding import FastFFTPadding


@dataclass(frozen=True)
class FNOConfig:
    """Fourier neural operator. `n_modes_*` are kept Fourier modes per dimension (0 = from the grid).

    `domain_padding` is the fraction of each dimension padded on each side (-1 = from the grid); with
    `fft_padding` the padded size is then rounded up to an FFT-friendly one (`models.padding`).
    """

    hidden_channels: int = 0
    n_layers: int = 4
    n_modes_lat: int = 0
    n_modes_lon: int = 0
    domain_padding: float = -1.0
    fft_padding: bool = True
    factorization: Literal["dense", "tucker"] = "dense"
    rank: float = 0.5
    lifting_channel_ratio: float = 2.0
    projection_channel_ratio: float = 2.0

    def __post_init__(self) -> None:
        _check_common(self)
        if self.factorization not in ("dense", "tucker"):
            raise ConfigError(f"factorization: expected 'dense' or 'tucker', got {self.factorization!r}")
        if not 0.0 < self.rank <= 1.0:
            raise ConfigError(f"rank: expected a fraction in (0, 1], got {self.rank}")
        if self.domain_padding != -1.0 and not 0.0 <= self.domain_padding <= 1.0:
            raise ConfigError(
                f"domain_padding: expected 0..1 (or -1 for automatic), got {self.domain_padding}"
            )


@dataclass(frozen=True)
class SFNOConfig:
    """Spherical Fourier neural operator for global equiangular or Gaussian grids."""

    hidden_channels: int = 0
    n_layers: int = 4
    n_modes_lat: int = 0
    n_modes_lon: int = 0
    lifting_channel_ratio: float = 2.0
    projection_channel_ratio: float = 2.0

    def __post_init__(self) -> None:
        _check_common(self)


ModelConfig = FNOConfig | SFNOConfig
MODEL_CONFIGS: dict[str, type[FNOConfig] | type[SFNOConfig]] = {"fno": FNOConfig, "sfno": SFNOConfig}


def _check_common(config: FNOConfig | SFNOConfig) -> None:
    for name in ("hidden_channels", "n_modes_lat", "n_modes_lon"):
        if getattr(config, name) < 0:
            raise ConfigError(
                f"{name}: expected >= 0 (0 = chosen from the grid), got {getattr(config, name)}"
            )
    if config.n_layers < 1:
        raise ConfigError(f"n_layers: expected >= 1, got {config.n_layers}")
    for name in ("lifting_channel_ratio", "projection_channel_ratio"):
        if getattr(config, name) <= 0:
            raise ConfigError(f"{name}: expected > 0, got {getattr(config, name)}")


def model_names() -> tuple[str, ...]:
    return tuple(MODEL_CONFIGS)


def model_config_from_dict(name: str, values: dict[str, Any]) -> FNOConfig | SFNOConfig:
    """A typed config of model `name`; unknown keys raise `ConfigError` naming them."""
    if name not in MODEL_CONFIGS:
        raise ConfigError(f"model: unknown model {name!r}; known: {', '.join(MODEL_CONFIGS)}")
    cls = MODEL_CONFIGS[name]
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"model {name}: unknown key(s) {', '.join(unknown)}")
    return cls(**values)


def model_config_to_dict(config: FNOConfig | SFNOConfig) -> dict[str, Any]:
    return asdict(config)


def resolve_defaults(config: FNOConfig | SFNOConfig, grid: GridInfo) -> FNOConfig | SFNOConfig:
    """Fill the zero (automatic) fields from the grid size.

    Modes: half the grid in each dimension (the Nyquist limit of an rfft), capped at 32 x 64. Hidden
    width: 32 on grids up to 64 x 128, 64 above. Padding: 12.5% per side on regional grids (rounded up
    to FFT-friendly sizes: at least a quarter of the grid between opposite edges), none on global ones.
    """
    values = asdict(config)
    nlat, nlon = grid.nlat, grid.nlon
    if config.n_modes_lat == 0:
        values["n_modes_lat"] = max(2, min(32, nlat // 2))
    if config.n_modes_lon == 0:
        values["n_modes_lon"] = max(2, min(64, nlon // 2))
    if config.hidden_channels == 0:
        values["hidden_channels"] = 32 if nlat * nlon <= 64 * 128 else 64
    if isinstance(config, FNOConfig) and config.domain_padding == -1.0:
        values["domain_padding"] = 0.0 if grid.is_global else 0.125
    return type(config)(**values)


def sht_grid_of(grid: GridInfo) -> str:
    """The torch-harmonics grid name of a global grid, or `ConfigError` when SFNO cannot use it."""
    if not grid.is_global:
        raise ConfigError(
            f"model sfno: needs a global grid (longitudes wrapping 360 degrees); this grid spans "
            f"lon {min(grid.lon)}..{max(grid.lon)}, lat {min(grid.lat)}..{max(grid.lat)}. Use model = 'fno'."
        )
    lat = np.asarray(grid.lat)
    if (
        abs(lat[0] - 90.0) < 1e-6
        and abs(lat[-1] + 90.0) < 1e-6
        and np.allclose(np.diff(lat), lat[1] - lat[0])
    ):
        return "equiangular"
    nodes, _ = np.polynomial.legendre.leggauss(len(lat))
    gauss = np.degrees(np.arcsin(nodes))[::-1]
    if np.allclose(lat, gauss, atol=0.05):
        return "legendre-gauss"
    raise ConfigError(
        "model sfno: latitudes are neither equiangular with both poles nor Gaussian; "
        "regrid the data or use model = 'fno'"
    )


def build_network(
    name: str,
    config: FNOConfig | SFNOConfig,
    *,
    in_channels: int,
    out_channels: int,
    grid: GridInfo,
    fast_layers: bool = True,
) -> nn.Module:
    """Build the network of model `name` mapping `(B, in, lat, lon)` to `(B, out, lat, lon)`.

    With `fast_layers` the kernel-1 convolutions (both models), the FNO's spectral convolutions and the
    SFNO's spherical ones are `models.fast_layers`' and `models.fast_spherical`'s forms of
    neuraloperator's (same parameters and results, faster); without, neuraloperator's own layers.
    """
    from neuralop.layers.spectral_convolution import SpectralConv
    from neuralop.layers.spherical_convolution import SphericalConv
    from neuralop.models import FNO, SFNO

    from fno_forecast.models.fast_layers import TruncatedSpectralConv, use_pointwise_convs
    from fno_forecast.models.fast_spherical import TruncatedSphericalConv

    config = resolve_defaults(config, grid)
    common = dict(
        n_modes=(config.n_modes_lat, config.n_modes_lon),
        in_channels=in_channels,
        out_channels=out_channels,
        hidden_channels=config.hidden_channels,
        n_layers=config.n_layers,
        lifting_channel_ratio=config.lifting_channel_ratio,
        projection_channel_ratio=config.projection_channel_ratio,
        positional_embedding=None,
    )
    if name == "fno" and isinstance(config, FNOConfig):
        padding = config.domain_padding
        if padding > 0 and grid.is_global:
            padding = [padding, 0.0]
        network = FNO(
            **common,
            domain_padding=padding if padding else None,
            factorization=None if config.factorization == "dense" else "tucker",
            rank=config.rank,
            implementation="factorized" if config.factorization == "tucker" else "reconstructed",
            conv_module=_fp32_conv(TruncatedSpectralConv if fast_layers else SpectralConv),
        )
        if padding and config.fft_padding:
            fractions = tuple(padding) if isinstance(padding, list) else (padding, padding)
            network.domain_padding = FastFFTPadding(fractions)
    elif name == "sfno" and isinstance(config, SFNOConfig):
        sht_grid = sht_grid_of(grid)
        conv = TruncatedSphericalConv if fast_layers else SphericalConv
        network = SFNO(**common, conv_module=_fp32_conv(conv, sht_grids=sht_grid))
    else:
        raise ConfigError(f"model: config {type(config).__name__} does not belong to model {name!r}")
    if fast_layers:
        use_pointwise_convs(network)
    return network


def _fp32_conv(base: type[nn.Module], **fixed: Any) -> type[nn.Module]:
    """A subclass of a spectral convolution whose transform always runs in fp32, outside autocast."""

    class Fp32Conv(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **{**kwargs, **fixed})

        def forward(self, x: torch.Tensor, output_shape: Any = None) -> torch.Tensor:
            with torch.autocast(device_type=x.device.type, enabled=False):
                return super().forward(x.float(), output_shape=output_shape)

    Fp32Conv.__name__ = f"Fp32{base.__name__}"
    Fp32Conv.__qualname__ = Fp32Conv.__name__
    return Fp32Conv


def tensor_state_dict(module: nn.Module) -> dict[str, torch.Tensor]:
    """The module's state dict without neuraloperator's `_metadata` entry (which holds classes).

    What is left is plain tensors, fit for safetensors and for `torch.load(weights_only=True)`.
    """
    return {k: v for k, v in module.state_dict().items() if isinstance(v, torch.Tensor)}
