"""The one-step predictor: physical units in, physical units out.

`Stepper` wraps a network that works in normalised units (the graphcast/makani pattern), so callers never
see normalisation and can never forget to de-normalise. One step:

1. normalise the current state (and the previous state when `use_history`) with the per-channel mean/std;
2. add forcings: hour-of-day and day-of-year sin/cos of the *target* time, static lat/lon encodings and,
   when `use_climatology`, the normalised harmonic climatology at the target time (it lets the network
   learn relaxation toward climatology, which is what keeps long rollouts from drifting);
3. run the network, whose output is the tendency in units of the per-channel tendency std;
4. `next = state + output * tendency_std` in physical units;
5. with a `relaxation` field r `(C, H, W)` (needs the climatology), also add the climatological
   tendency and damp the anomaly: `next += clim(t+1) - clim(t) - r * (state - clim(t))`, i.e. damped
   anomaly persistence, the AR(1) prior of the linear baselines, fitted on the training data.
   The network learns what that prior misses, and long rollouts relax toward climatology instead of
   drifting away from it. Or, on a global grid with both poles, with a `spectral_prior`
   (`fno_forecast.models.linear_spectral.SpectralPrior`): the linear dynamics fitted per zonal
   wavenumber, applied to the state's departure from the time-mean state, `next += L(state) - state`.
   `prior_step` is the prior alone (what an untrained stepper forecasts).
6. with a `conservation` spec, hold the laws the data obey (`fno_forecast.models.conservation`: global
   mass, a shallow layer's angular momentum and energy) at the input state's values.

The statistics and climatology coefficients are buffers, so they travel with `state_dict` and the device.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from fno_forecast.climatology import HOURS_PER_YEAR, Climatology, harmonic_design
from fno_forecast.models.conservation import Conservation, ConservationSpec
from fno_forecast.models.linear_spectral import SpectralPrior

PRIORS = ("none", "damped", "linear_spectral")

N_TIME_FEATURES = 4
N_STATIC_FEATURES = 4


def stepper_in_channels(n_channels: int, *, use_history: bool, use_climatology: bool) -> int:
    """Input channels of the network: state (+ previous) (+ climatology) + time + static features."""
    return n_channels * (1 + int(use_history) + int(use_climatology)) + N_TIME_FEATURES + N_STATIC_FEATURES


class Stepper(nn.Module):
    """Advance a `(B, C, H, W)` state in physical units by one time step of `step_hours`."""

    def __init__(
        self,
        network: nn.Module,
        *,
        mean: np.ndarray,
        std: np.ndarray,
        tendency_std: np.ndarray,
        lat: np.ndarray,
        lon: np.ndarray,
        step_hours: float,
        use_history: bool,
        climatology: np.ndarray | None = None,
        climatology_annual: int = 0,
        climatology_diurnal: int = 0,
        relaxation: np.ndarray | None = None,
        spectral_prior: Mapping[str, Any] | None = None,
        conservation: ConservationSpec | None = None,
    ) -> None:
        super().__init__()
        self.network = network
        self.step_hours = float(step_hours)
        self.use_history = bool(use_history)
        self.use_climatology = climatology is not None
        self.climatology_annual = int(climatology_annual)
        self.climatology_diurnal = int(climatology_diurnal)
        n_channels = len(mean)
        for name, values in (("mean", mean), ("std", std), ("tendency_std", tendency_std)):
            values = np.asarray(values, dtype=np.float32)
            if values.shape != (n_channels,):
                raise ValueError(f"Stepper.{name}: expected shape ({n_channels},), got {values.shape}")
            if name != "mean" and not np.all(values > 0):
                raise ValueError(f"Stepper.{name}: every value must be > 0")
            self.register_buffer(name, torch.from_numpy(values.copy()).view(1, -1, 1, 1))
        lat_r = np.radians(np.asarray(lat, dtype=np.float64))
        lon_r = np.radians(np.asarray(lon, dtype=np.float64))
        lat2, lon2 = np.meshgrid(lat_r, lon_r, indexing="ij")
        static = np.stack([np.sin(lat2), np.cos(lat2), np.sin(lon2), np.cos(lon2)]).astype(np.float32)
        self.register_buffer("static", torch.from_numpy(static).unsqueeze(0))
        if climatology is not None:
            coefficients = np.asarray(climatology, dtype=np.float32)
            expected_terms = 1 + 2 * self.climatology_annual + 2 * self.climatology_diurnal
            if coefficients.shape != (expected_terms, n_channels, len(lat), len(lon)):
                raise ValueError(
                    f"Stepper.climatology: expected shape ({expected_terms}, {n_channels}, {len(lat)}, "
                    f"{len(lon)}), got {coefficients.shape}"
                )
            self.register_buffer("climatology", torch.from_numpy(coefficients.copy()))
        else:
            self.climatology = None
        if relaxation is not None:
            if climatology is None:
                raise ValueError("Stepper.relaxation: relaxation toward climatology needs the climatology")
            relax = np.asarray(relaxation, dtype=np.float32)
            if relax.shape != (n_channels, len(lat), len(lon)):
                raise ValueError(
                    f"Stepper.relaxation: expected shape ({n_channels}, {len(lat)}, {len(lon)}), got {relax.shape}"
                )
            self.register_buffer("relaxation", torch.from_numpy(relax.copy()).unsqueeze(0))
        else:
            self.relaxation = None
        self.conservation: Conservation | None = None
        if conservation is not None and conservation.laws:
            roles = [i for i in (conservation.mass, conservation.u, conservation.v) if i is not None]
            if any(not 0 <= i < n_channels for i in roles):
                raise ValueError(f"Stepper.conservation: channel indices {roles} for {n_channels} channels")
            self.conservation = Conservation(conservation, lat=np.asarray(lat), lon=np.asarray(lon))
        self.spectral_prior: SpectralPrior | None = None
        if spectral_prior is not None:
            if relaxation is not None:
                raise ValueError("Stepper: one prior at a time (relaxation or spectral_prior)")
            self.spectral_prior = SpectralPrior(**spectral_prior)
            if tuple(self.spectral_prior.reference.shape) != (n_channels, len(lat), len(lon)):
                raise ValueError(
                    f"Stepper.spectral_prior: reference of shape {tuple(self.spectral_prior.reference.shape)}, "
                    f"the grid needs ({n_channels}, {len(lat)}, {len(lon)})"
                )

    @property
    def prior(self) -> str:
        """Which prior the stepper adds the network's tendency to: one of `PRIORS`."""
        if self.spectral_prior is not None:
            return "linear_spectral"
        return "none" if self.relaxation is None else "damped"

    @property
    def n_channels(self) -> int:
        return int(self.mean.shape[1])

    def normalise(self, state: torch.Tensor) -> torch.Tensor:
        return (state - self.mean) / self.std

    def time_features(self, time_hours: torch.Tensor) -> torch.Tensor:
        """`(B, 4, H, W)`: sin/cos of hour of day and of day of year at `time_hours` (float64 `(B,)`)."""
        hours = time_hours.to(torch.float64)
        day = 2.0 * math.pi * torch.remainder(hours, 24.0) / 24.0
        year = 2.0 * math.pi * torch.remainder(hours, HOURS_PER_YEAR) / HOURS_PER_YEAR
        features = torch.stack([day.sin(), day.cos(), year.sin(), year.cos()], dim=1).to(torch.float32)
        height, width = self.static.shape[-2:]
        return features.view(-1, N_TIME_FEATURES, 1, 1).expand(-1, -1, height, width)

    def climatology_at(self, time_hours: torch.Tensor, offset: torch.Tensor | None = None) -> torch.Tensor:
        """Climatological states `(B, C, H, W)` in physical units at `time_hours`, plus `offset` if given.

        The harmonic design is `fno_forecast.climatology.harmonic_design`, computed in torch on the device.
        The offset is a forecast's recent-anomaly correction (`fno_forecast.recent_anomaly`).
        """
        if self.climatology is None:
            raise ValueError("Stepper.climatology_at: this stepper was built without a climatology")
        hours = time_hours.to(device=self.climatology.device, dtype=torch.float64)
        design = harmonic_design(hours, annual=self.climatology_annual, diurnal=self.climatology_diurnal)
        design_t = design.to(torch.float32)
        states = torch.einsum("bt,tchw->bchw", design_t, self.climatology)
        return states if offset is None else states + offset

    def network_inputs(
        self,
        state: torch.Tensor,
        *,
        time_hours: torch.Tensor,
        previous: torch.Tensor | None,
        target_climatology: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """`(B, in, H, W)` network inputs; `target_climatology` saves recomputing `climatology_at`."""
        target_hours = time_hours.to(torch.float64) + self.step_hours
        parts = [self.normalise(state)]
        if self.use_history:
            parts.append(self.normalise(state if previous is None else previous))
        if self.use_climatology:
            if target_climatology is None:
                target_climatology = self.climatology_at(target_hours)
            parts.append(self.normalise(target_climatology))
        parts.append(self.time_features(target_hours).to(state.device))
        parts.append(self.static.expand(state.shape[0], -1, -1, -1))
        return torch.cat(parts, dim=1)

    def forward(
        self,
        state: torch.Tensor,
        *,
        time_hours: torch.Tensor,
        previous: torch.Tensor | None = None,
        climatology_offset: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Next state `(B, C, H, W)` from `state` valid at `time_hours` (`(B,)` float64 hours since 1970).

        Without `previous`, a history-using stepper takes the state itself as its previous state.
        `climatology_offset` `(B, C, H, W)` shifts the climatology the stepper sees and relaxes toward
        (`fno_forecast.recent_anomaly`); it needs a stepper built with a climatology.
        """
        if state.ndim != 4 or state.shape[1] != self.n_channels:
            raise ValueError(
                f"Stepper: expected state (batch, {self.n_channels}, lat, lon), got {tuple(state.shape)}"
            )
        if climatology_offset is not None and not self.use_climatology:
            raise ValueError("Stepper: climatology_offset needs a stepper built with a climatology")
        hours = time_hours.to(torch.float64)
        next_clim = None
        if self.use_climatology:
            next_clim = self.climatology_at(hours + self.step_hours, offset=climatology_offset)
        inputs = self.network_inputs(
            state, time_hours=time_hours, previous=previous, target_climatology=next_clim
        )
        tendency = self.network(inputs).float()
        following = state + tendency * self.tendency_std
        change = self._prior_change(
            state, hours=hours, previous=previous, offset=climatology_offset, next_clim=next_clim
        )
        following = following if change is None else following + change
        return following if self.conservation is None else self.conservation(state, following)

    def prior_step(
        self,
        state: torch.Tensor,
        *,
        time_hours: torch.Tensor,
        previous: torch.Tensor | None = None,
        climatology_offset: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The next state the prior alone forecasts (the stepper with a network that adds nothing):
        damped anomaly persistence, the linear spectral step, or persistence without a prior."""
        hours = time_hours.to(torch.float64)
        next_clim = None
        if self.relaxation is not None:
            next_clim = self.climatology_at(hours + self.step_hours, offset=climatology_offset)
        change = self._prior_change(
            state, hours=hours, previous=previous, offset=climatology_offset, next_clim=next_clim
        )
        return state if change is None else state + change

    def _prior_change(
        self,
        state: torch.Tensor,
        *,
        hours: torch.Tensor,
        previous: torch.Tensor | None,
        offset: torch.Tensor | None,
        next_clim: torch.Tensor | None,
    ) -> torch.Tensor | None:
        """What the prior adds to the state in one step (None without a prior)."""
        if self.spectral_prior is not None:
            return self.spectral_prior.change(state, previous=previous)
        if self.relaxation is not None and next_clim is not None:
            now_clim = self.climatology_at(hours, offset=offset)
            return (next_clim - now_clim) - self.relaxation * (state - now_clim)
        return None


def build_stepper(
    *,
    model_name: str,
    model_config: object,
    grid_lat: np.ndarray,
    grid_lon: np.ndarray,
    step_hours: float,
    mean: np.ndarray,
    std: np.ndarray,
    tendency_std: np.ndarray,
    use_history: bool,
    climatology: Climatology | None = None,
    relaxation: np.ndarray | None = None,
    spectral_prior: Mapping[str, Any] | None = None,
    conservation: ConservationSpec | None = None,
) -> Stepper:
    """Build the network of a registered model and wrap it in a `Stepper`.

    The one builder of steppers: training builds a fresh one, `fno_forecast.bundle.load_bundle` builds
    one and loads the saved weights into its network. `climatology` is fed as a forcing input (or None).
    With a prior (`relaxation`, or the arrays and analysis of a `spectral_prior`) the network's output layer starts at
    zero, so the untrained stepper is exactly its prior and training only ever adds to a sound forecast.
    """
    from fno_forecast.data.schema import GridInfo
    from fno_forecast.models.registry import build_network

    grid = GridInfo.from_arrays(np.asarray(grid_lat), np.asarray(grid_lon))
    n_channels = len(mean)
    in_channels = stepper_in_channels(
        n_channels, use_history=use_history, use_climatology=climatology is not None
    )
    network = build_network(
        model_name,
        model_config,
        in_channels=in_channels,
        out_channels=n_channels,
        grid=grid,  # type: ignore[arg-type]
    )
    if relaxation is not None or spectral_prior is not None:
        zero_output_layer(network)
    return Stepper(
        network,
        mean=mean,
        std=std,
        tendency_std=tendency_std,
        lat=np.asarray(grid_lat),
        lon=np.asarray(grid_lon),
        step_hours=step_hours,
        use_history=use_history,
        climatology=None if climatology is None else climatology.coefficients,
        climatology_annual=0 if climatology is None else climatology.annual,
        climatology_diurnal=0 if climatology is None else climatology.diurnal,
        relaxation=relaxation,
        spectral_prior=spectral_prior,
        conservation=conservation,
    )


def zero_output_layer(network: nn.Module) -> None:
    """Zero the weights and bias of the last linear or convolution layer (the output projection)."""
    layers = [m for m in network.modules() if isinstance(m, nn.Linear | nn.Conv1d | nn.Conv2d)]
    if not layers:
        raise ValueError("zero_output_layer: the network has no linear or convolution layer")
    with torch.no_grad():
        layers[-1].weight.zero_()
        if layers[-1].bias is not None:
            layers[-1].bias.zero_()
