"""Which conservation laws (`fno_forecast.models.conservation`) a data set obeys, measured on its
training data.

Only a global grid can conserve anything (a regional one exchanges through its edges). On up to
`MAX_PAIRS` evenly spaced pairs of consecutive steps (never across a gap in the time axis), read a few at a
time:

- `mass`: the single-level channel whose area mean varies least over time, relative to its spread in
  space, where that is under `MASS_TOLERANCE` (a shallow-water layer height: 4e-4; a temperature or a
  geopotential: seasons and weather move it by a tenth or more);
- `angular_momentum`: with a mass channel and single-level winds named u and v, where the step-to-step
  change of the layer's axial angular momentum is under `MOMENTUM_TOLERANCE` of that of its relative
  part `h u cos(lat)` (the solver's shallow water: 0.02; the flow moves angular momentum between
  latitudes, the total barely changes);
- `energy`: where no pair gains energy (kinetic plus available potential) beyond float32 rounding; the
  bound is then the largest ratio of a pair's energies (the slowest loss), with that rounding added;
- `poles`: on a grid whose first and last rows are the poles, where each channel's pole rows hold one
  zonal wavenumber, 0 or 1 (a scalar, a wind component): the power off it under `POLE_TOLERANCE` of
  what a row with the channel's spatial spread would hold.

`conservation = ["auto"]` (the default) keeps what the data obey; a list of laws keeps those (their
channels found the same way); `[]` none.
"""

from __future__ import annotations

import numpy as np
import torch
import xarray as xr

from fno_forecast.data.schema import DataSchema
from fno_forecast.data.stats import block_steps
from fno_forecast.data.timeaxis import consecutive, detect_step
from fno_forecast.errors import ConfigError
from fno_forecast.models.conservation import Conservation, ConservationSpec, has_pole_rows
from fno_forecast.training.defaults import Choice

MAX_PAIRS = 256
MASS_TOLERANCE = 1e-3  # std over time of the area mean / mean spatial std
MOMENTUM_TOLERANCE = 0.1  # std of the total's step changes / std of the relative part's
POLE_TOLERANCE = 1e-6  # a pole row's power off its one wavenumber, over a row of the spatial spread's
ENERGY_TOLERANCE = 1e-6  # relative gain over one step that counts as none (float32 rounding)
U_NAMES = ("u", "ua", "u_component_of_wind", "eastward_wind")
V_NAMES = ("v", "va", "v_component_of_wind", "northward_wind")


def _pairs(times: np.ndarray) -> np.ndarray:
    """Indices `t` of up to `MAX_PAIRS` evenly spaced steps whose next step follows without a gap."""
    step_hours, step_months = detect_step(times)
    linked = np.flatnonzero(consecutive(times, step_hours=step_hours, step_months=step_months))
    if linked.size <= MAX_PAIRS:
        return linked
    return linked[np.linspace(0, linked.size - 1, MAX_PAIRS).round().astype(int)]


def _wind(schema: DataSchema, names: tuple[str, ...]) -> int | None:
    for index, channel in enumerate(schema.channels):
        if channel.level is None and channel.variable in names:
            return index
    return None


class _Sums:
    """Area means per sampled step of what the laws read, from `(steps, channel, lat, lon)` blocks: every
    channel's mean and spatial spread, its pole rows' power per zonal wavenumber, and, with winds, the
    angular momentum and energy of a layer whose thickness each single-level channel would be (which one
    is the mass is known only once all are read; nothing but these series is kept). The sums are the
    stepper's own (`models.conservation.Conservation`), in float64."""

    def __init__(self, lat: np.ndarray, lon: np.ndarray, *, layers: list[int], u: int | None, v: int | None):
        self.laws = Conservation(ConservationSpec(()), lat=lat, lon=lon, dtype=torch.float64)
        self.layers, self.u, self.v = layers, u, v
        self.series: dict[str, list[np.ndarray]] = {
            "mean": [],
            "spread": [],
            "relative": [],
            "total": [],
            "energy": [],
        }
        self.pole_power: np.ndarray | None = None  # (channel, wavenumber) summed over both pole rows
        self.pole_scale: np.ndarray | None = None  # (channel,)

    def add(self, block: np.ndarray) -> None:
        laws, fields = self.laws, torch.from_numpy(block)
        means = laws.area_mean(fields)
        self.series["mean"].append(means.numpy())
        anomaly = fields - means[..., None, None]
        self.series["spread"].append(laws.area_mean(anomaly * anomaly).sqrt().numpy())
        if self.u is not None and self.v is not None and self.layers:
            h = fields[:, self.layers]  # (steps, layers, lat, lon)
            u, v = fields[:, self.u : self.u + 1], fields[:, self.v : self.v + 1]
            self.series["relative"].append(laws.area_mean(h * u * laws.coslat).numpy())
            self.series["total"].append(laws.angular_momentum(h, u).numpy())
            self.series["energy"].append(laws.energy(h, u, v).numpy())
        poles = block[:, :, [0, -1]]  # (steps, channel, 2, lon)
        power = (np.abs(np.fft.rfft(poles, axis=-1)) ** 2).sum(axis=(0, 2))
        self.pole_power = power if self.pole_power is None else self.pole_power + power
        # what a row with the channel's spatial spread would hold: the scale of the power off its order
        scale = 2.0 * block.shape[-1] ** 2 * (self.series["spread"][-1] ** 2).sum(axis=0)
        self.pole_scale = scale if self.pole_scale is None else self.pole_scale + scale

    def pairs(self, name: str) -> np.ndarray:
        """`(pairs, 2, ...)`: each block holds its `now` steps then their next steps."""
        return np.concatenate([_split(block) for block in self.series[name]])

    def pole_orders(self) -> tuple[tuple[int, ...], float]:
        """Each channel's dominant zonal wavenumber on the pole rows, and the largest power off it of any
        channel, relative to what a row of the channel's spatial spread holds."""
        assert self.pole_power is not None and self.pole_scale is not None
        orders = self.pole_power.argmax(axis=1)
        off = self.pole_power.sum(axis=1) - self.pole_power[np.arange(orders.size), orders]
        return tuple(int(m) for m in orders), float((off / np.maximum(self.pole_scale, 1e-300)).max())


def _read(array: xr.DataArray, indices: np.ndarray, sums: _Sums) -> None:
    chunk = max(1, block_steps(array) // 2)
    for start in range(0, indices.size, chunk):
        now = indices[start : start + chunk]
        sums.add(np.asarray(array.isel(time=np.concatenate([now, now + 1])).values, dtype=np.float64))


def measure_laws(array: xr.DataArray, schema: DataSchema) -> tuple[ConservationSpec, str]:
    """The laws the training `array` (time, channel, lat, lon) obeys and the measurements behind them."""
    if not schema.grid.is_global:
        return ConservationSpec(()), "a regional grid: its edges exchange mass and momentum, none held"
    indices = _pairs(np.asarray(array["time"].values))
    if indices.size < 2:
        return ConservationSpec(()), "under two pairs of consecutive steps to measure on, none held"
    u, v = _wind(schema, U_NAMES), _wind(schema, V_NAMES)
    single = [i for i, c in enumerate(schema.channels) if c.level is None and i not in (u, v)]
    sums = _Sums(np.asarray(schema.grid.lat), np.asarray(schema.grid.lon), layers=single, u=u, v=v)
    _read(array, indices, sums)
    laws, why = [], []
    energy_ratio = 1.0
    orders, off = sums.pole_orders()
    pole_orders: tuple[int, ...] = ()
    if has_pole_rows(np.asarray(schema.grid.lat)):
        if off < POLE_TOLERANCE and all(m in (0, 1) for m in orders):
            laws.append("poles")
            pole_orders = orders
        why.append(f"the pole rows hold zonal wavenumbers {list(orders)} (power off them {off:.1e})")
    means, spreads = sums.pairs("mean"), sums.pairs("spread")  # (pairs, 2, channel)
    variation = means[:, 0].std(axis=0) / np.maximum(spreads[:, 0].mean(axis=0), 1e-30)
    candidates = [i for i in single if variation[i] < MASS_TOLERANCE]
    mass = min(candidates or single, key=lambda i: variation[i]) if single else None
    if not candidates:
        found = "" if mass is None else f" (least: {schema.channels[mass].name} {variation[mass]:.2g})"
        why.append(
            f"no single-level channel's global mean is invariant (std over time / spatial std < {MASS_TOLERANCE:g}){found}"
        )
    else:
        assert mass is not None
        laws.append("mass")
        why.append(
            f"{schema.channels[mass].name}'s global mean varies {variation[mass]:.1e} of its spatial std"
        )
    if candidates and u is not None and v is not None and mass is not None:
        layer = single.index(mass)
        relative, total = sums.pairs("relative")[:, :, layer], sums.pairs("total")[:, :, layer]
        ratio = float(np.std(total[:, 1] - total[:, 0]) / max(np.std(relative[:, 1] - relative[:, 0]), 1e-30))
        if ratio < MOMENTUM_TOLERANCE:
            laws.append("angular_momentum")
        why.append(f"angular momentum changes {ratio:.2g} of its relative part's a step")
        energy = sums.pairs("energy")[:, :, layer]
        gain = float(np.max(energy[:, 1] / np.maximum(energy[:, 0], 1e-30) - 1.0))
        if gain <= ENERGY_TOLERANCE:
            laws.append("energy")
            energy_ratio = min(1.0, 1.0 + gain + ENERGY_TOLERANCE)
        bound = f", a step keeps at most {energy_ratio:.5f} of it" if "energy" in laws else ""
        why.append(f"energy's largest gain in a step {gain:+.2%}{bound}")
    spec = ConservationSpec(
        tuple(laws), mass=mass, u=u, v=v, pole_orders=pole_orders, energy_ratio=energy_ratio
    )
    held = f"{', '.join(why)} ({indices.size} pairs of consecutive training steps)"
    return spec, held if laws else f"{held}: none held"


def _split(block: np.ndarray) -> np.ndarray:
    """`(2n, ...)` of n steps then their next steps -> `(n, 2, ...)`."""
    n = block.shape[0] // 2
    return np.stack([block[:n], block[n:]], axis=1)


def decide_conservation(
    laws: tuple[str, ...], array: xr.DataArray, schema: DataSchema
) -> tuple[ConservationSpec, Choice]:
    """The laws a checked config asks for (`("auto",)`: those the training `array` obeys) and why."""
    if not laws:
        return ConservationSpec(()), Choice("conservation", (), "none asked for")
    measured, why = measure_laws(array, schema)
    if laws == ("auto",):
        return measured, Choice("conservation", measured.laws, why)
    try:  # the laws' names are the config's to check (`TrainConfig`), the channels they need are here
        spec = ConservationSpec(
            tuple(laws),
            mass=measured.mass,
            u=measured.u,
            v=measured.v,
            pole_orders=measured.pole_orders,
            energy_ratio=measured.energy_ratio,
        )
    except ValueError as error:
        raise ConfigError(f"conservation: {error} ({why})") from error
    broken = [law for law in laws if law not in measured.laws]
    note = f"; the data do not obey {', '.join(broken)}" if broken else ""
    return spec, Choice("conservation", spec.laws, f"as set{note} ({why})")
