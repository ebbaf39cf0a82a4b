"""Conservation laws the stepper holds at every step: what the data's dynamics never change, a forecast
does not change either.

A network trained on rollouts of ten days is free to drift in what the dynamics conserve, and over a
year the drift is the forecast: on shallow-water flow an SFNO trained without these laws gained 0.4% of
its axial angular momentum in 10 days and 26% in 100, a superrotating jet that broke into waves
(`benchmarks/long_rollout.py --conservation poles,energy`; the README's sphere section). Held exactly, each
law costs a few area means a step, is differentiable (training learns with it), and touches only what it
fixes:

- `poles`: each pole row is one point, so it holds one value (a scalar) or one vector (the wind: zonal
  wavenumber 1 along the row); the rows are filled from the two rows nearest the pole (`_fill_poles`).

- `mass`: the area mean of a mass channel (the layer height of a shallow-water set; what an atmosphere's
  dry-air mass fix does with surface pressure, Watt-Meyer et al., 2023, ACE) is held at the input
  state's, the difference added uniformly.
- `angular_momentum`: the axial angular momentum of a shallow layer, the area mean of
  `h (u + Omega a cos(lat)) cos(lat)`, is held at the input's by adding a solid-body rotation
  `c cos(lat)` to u with the height that balances it (mass unchanged).
- `energy`: the layer's energy, kinetic `h |u|^2 / 2` plus available potential `g (h - mean h)^2 / 2`
  (area means), never grows: a dissipative flow without forcing loses it, at least at the slowest rate
  the training data show (`energy_ratio`, the largest ratio of a step's energy to the one before: 0.9978
  a 6-hourly step in the `nonlinear` shallow-water set, whose hyperdiffusion takes 0.2-2.5% a step; 1
  where it was not measured). Where a step would keep more, the departures from the state's solid-body
  rotation and mean height are scaled by one factor that brings the energy down to the bound, and the
  angular momentum is then held again. Held at 1, a year-long rollout kept 6-11 times the truth's
  energy: the networks dissipate less than the solver.

Which laws a data set obeys is measured on its training data (`fno_forecast.training.conservation_check`):
none for a reanalysis, whose forcing and friction change all three, unless a channel's global mean is
invariant there. The constants are the Earth's, as torch-harmonics' shallow-water solver uses them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

LAWS = ("poles", "mass", "angular_momentum", "energy")
GRAVITY = 9.80616  # m s-2
OMEGA = 7.292e-5  # s-1
RADIUS = 6.37122e6  # m
ENERGY_ROUNDS = 3
MOMENTUM_ROUNDS = 2


@dataclass(frozen=True)
class ConservationSpec:
    """The laws and the channel indices they read: `mass` the mass channel; `u`, `v` the wind."""

    laws: tuple[str, ...]
    mass: int | None = None
    u: int | None = None
    v: int | None = None
    pole_orders: tuple[int, ...] = ()  # per channel: the zonal wavenumber its pole rows hold (0 or 1)
    energy_ratio: float = 1.0  # a step's energy is at most this times the input's (`energy` law)

    def __post_init__(self) -> None:
        unknown = [law for law in self.laws if law not in LAWS]
        if unknown:
            raise ValueError(f"conservation: unknown law(s) {unknown}; known: {', '.join(LAWS)}")
        needs = {"mass": ("mass",), "angular_momentum": ("mass", "u"), "energy": ("mass", "u", "v")}
        if "poles" in self.laws and not self.pole_orders:
            raise ValueError("conservation law 'poles' needs each channel's pole wavenumber (pole_orders)")
        if not 0.0 < self.energy_ratio <= 1.0:
            raise ValueError(f"conservation: energy_ratio must be in (0, 1], got {self.energy_ratio}")
        if any(order not in (0, 1) for order in self.pole_orders):
            raise ValueError(f"conservation: pole_orders must be 0 or 1, got {list(self.pole_orders)}")
        for law in self.laws:
            if law == "poles":
                continue
            missing = [role for role in needs[law] if getattr(self, role) is None]
            if missing:
                raise ValueError(f"conservation law {law!r} needs the {', '.join(missing)} channel(s)")

    def to_dict(self, channel_names: Sequence[str]) -> dict[str, Any]:
        """By channel name, as a bundle's metadata keeps it."""
        roles = {role: getattr(self, role) for role in ("mass", "u", "v")}
        poles = {"pole_orders": list(self.pole_orders)} if self.pole_orders else {}
        ratio = {"energy_ratio": self.energy_ratio} if self.energy_ratio != 1.0 else {}
        return (
            {"laws": list(self.laws)}
            | poles
            | ratio
            | {role: channel_names[index] for role, index in roles.items() if index is not None}
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any], channel_names: Sequence[str]) -> ConservationSpec:
        names = list(channel_names)
        roles: dict[str, int | None] = {}
        for role in ("mass", "u", "v"):
            name = data.get(role)
            if name is not None and name not in names:
                raise ValueError(f"conservation: {role} channel {name!r} is not one of {names}")
            roles[role] = None if name is None else names.index(name)
        orders = tuple(int(order) for order in data.get("pole_orders", ()))
        if orders and len(orders) != len(names):
            raise ValueError(f"conservation: {len(orders)} pole_orders for {len(names)} channels")
        return cls(
            laws=tuple(str(law) for law in data.get("laws", ())),
            pole_orders=orders,
            energy_ratio=float(data.get("energy_ratio", 1.0)),  # bundles written before it: 1
            **roles,
        )


def has_pole_rows(lat: np.ndarray) -> bool:
    """Whether the first and last rows of `lat` (degrees, descending) are the poles."""
    lat = np.asarray(lat, dtype=np.float64)
    return bool(lat.size >= 4 and abs(lat[0] - 90.0) < 1e-6 and abs(lat[-1] + 90.0) < 1e-6)


def sphere_weights(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """`(lat,)` float64 weights of an area integral over the grid's rows: on an equiangular grid with both
    poles the Clenshaw-Curtis quadrature that torch-harmonics' transforms and shallow-water solver use
    (exact for the band-limited fields the solver makes, so its conserved mass is conserved here to
    rounding; cos(lat) weights see it vary by 0.25% of h's spatial spread on a 17 x 32 grid), else
    cos(lat)."""
    from torch_harmonics.quadrature import clenshaw_curtiss_weights

    from fno_forecast.models.linear_spectral import sphere_with_poles

    lat = np.asarray(lat, dtype=np.float64)
    if sphere_with_poles(lat, np.asarray(lon)):
        return clenshaw_curtiss_weights(lat.size)[1].numpy().astype(np.float64)  # symmetric in latitude
    return np.clip(np.cos(np.deg2rad(lat)), 0.0, None)


class Conservation(nn.Module):
    """Holds `spec.laws` on a step: `forward(state, following)` returns `following` corrected so that each
    law's quantity is the `state`'s (the energy: at most `spec.energy_ratio` times the state's)."""

    def __init__(
        self, spec: ConservationSpec, *, lat: np.ndarray, lon: np.ndarray, dtype: torch.dtype = torch.float32
    ) -> None:
        """`dtype`: of the weights (float64 where the data's own sums are measured, before any rounding)."""
        super().__init__()
        self.spec = spec
        coslat = np.clip(np.cos(np.deg2rad(np.asarray(lat, dtype=np.float64))), 0.0, None)
        self.register_buffer("coslat", torch.from_numpy(coslat).to(dtype).view(1, -1, 1))
        weights = sphere_weights(lat, lon)
        self.register_buffer("weights", torch.from_numpy(weights).to(dtype).view(1, -1, 1))
        if "poles" in spec.laws and not has_pole_rows(np.asarray(lat)):
            raise ValueError("conservation law 'poles': the grid's first and last rows are not the poles")
        self.register_buffer(
            "pole_order", torch.tensor(spec.pole_orders or (0,), dtype=torch.long), persistent=False
        )

    def area_mean(self, field: torch.Tensor) -> torch.Tensor:
        """Area means `(...)` of `(..., lat, lon)` fields (`sphere_weights`)."""
        # divided by the weights' sum in the working precision: a constant field's mean is itself
        return (field * self.weights).sum(dim=-2).mean(dim=-1) / self.weights.sum()

    def angular_momentum(self, h: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        return self.area_mean(h * (u + OMEGA * RADIUS * self.coslat) * self.coslat)

    def energy(self, h: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        anomaly = h - self.area_mean(h)[..., None, None]
        return self.area_mean(0.5 * h * (u * u + v * v) + 0.5 * GRAVITY * anomaly * anomaly)

    def _fill_poles(self, following: torch.Tensor) -> torch.Tensor:
        """Each pole row from the two rows nearest it, `(4 f1 - f2) / 3` (a field even about the pole),
        keeping only the zonal wavenumber the channel's pole rows hold in the data: 0 for a scalar (the
        pole is one point), 1 for a wind component (one vector seen from every longitude). The loss
        weighs a pole row by its area, next to nothing, so a network's pole rows are free and, fed back
        step after step, grow on their own."""
        width = following.shape[-1]
        order = self.pole_order.to(following.device)  # (C,)
        keep = (torch.arange(width // 2 + 1, device=following.device)[None, :] == order[:, None]).to(
            following.dtype
        )
        rows = []
        for first, second in ((1, 2), (-2, -3)):
            near = torch.fft.rfft(following[:, :, first], dim=-1)
            next_ = torch.fft.rfft(following[:, :, second], dim=-1)
            pole = (4.0 * near - next_) / 3.0 * keep
            rows.append(torch.fft.irfft(pole, n=width, dim=-1))
        return torch.cat([rows[0][:, :, None], following[:, :, 1:-1], rows[1][:, :, None]], dim=2)

    def _hold_momentum(
        self, state: torch.Tensor, h: torch.Tensor, u: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`(h, u)` with the input's angular momentum: a solid-body rotation `c cos(lat)` added to u and
        the height that balances it, `-(Omega a c / g) sin^2(lat)` less its mean (Williamson et al.,
        1992, case 2, to first order in c). A rotation added alone is out of balance and radiates
        gravity waves: held that way at inference, an SFNO trained without the laws scored h 42.4 m and
        u 1.50 m/s at 240 h, balanced 41.3 and 1.44."""
        spec = self.spec
        assert spec.mass is not None and spec.u is not None
        target = self.angular_momentum(state[:, spec.mass], state[:, spec.u])
        sin2 = 1.0 - self.coslat * self.coslat
        balance = -(OMEGA * RADIUS / GRAVITY) * (sin2 - self.area_mean(sin2.expand_as(h[:1]))[:, None, None])
        for _ in range(MOMENTUM_ROUNDS):  # the momentum is quadratic in c through h u: two rounds
            gained = self.area_mean(h * self.coslat * self.coslat) + self.area_mean(
                balance * (u + OMEGA * RADIUS * self.coslat) * self.coslat
            )
            rotation = ((target - self.angular_momentum(h, u)) / gained)[:, None, None]
            u = u + rotation * self.coslat
            h = h + rotation * balance
        return h, u

    def forward(self, state: torch.Tensor, following: torch.Tensor) -> torch.Tensor:
        spec, laws = self.spec, self.spec.laws
        if not laws:
            return following
        if "poles" in laws:
            following = self._fill_poles(following)
        fields = list(following.unbind(dim=1))
        if "mass" in laws:
            assert spec.mass is not None
            shift = self.area_mean(state[:, spec.mass]) - self.area_mean(fields[spec.mass])
            fields[spec.mass] = fields[spec.mass] + shift[:, None, None]
        if "angular_momentum" in laws:
            assert spec.mass is not None and spec.u is not None
            fields[spec.mass], fields[spec.u] = self._hold_momentum(state, fields[spec.mass], fields[spec.u])
        if "energy" in laws:
            assert spec.mass is not None and spec.u is not None and spec.v is not None
            before = spec.energy_ratio * self.energy(state[:, spec.mass], state[:, spec.u], state[:, spec.v])
            # the energy is not quadratic in the factor (h |u|^2) and holding the angular momentum again
            # adds a little: three rounds bring it within a millionth of the bound
            for _ in range(ENERGY_ROUNDS):
                h, u, v = fields[spec.mass], fields[spec.u], fields[spec.v]
                ratio = before / self.energy(h, u, v).clamp(min=1e-30)
                factor = torch.sqrt(torch.clamp(ratio, max=1.0))[:, None, None]
                # the solid-body rotation carries the angular momentum: the departures from it are scaled
                rotation = self.area_mean(u * self.coslat) / self.area_mean(self.coslat * self.coslat)
                solid = rotation[:, None, None] * self.coslat
                mean_h = self.area_mean(h)[:, None, None]
                fields[spec.mass] = mean_h + factor * (h - mean_h)
                fields[spec.v] = factor * v
                fields[spec.u] = solid + factor * (u - solid)
                if "angular_momentum" in laws:
                    fields[spec.mass], fields[spec.u] = self._hold_momentum(
                        state, fields[spec.mass], fields[spec.u]
                    )
        return torch.stack(fields, dim=1)
