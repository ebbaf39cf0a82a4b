"""Year-long rollout on the sphere: does a model stay finite and physical for 1,460 six-hourly steps?

A bundle trained on shallow-water data (`data/make_swe.py`) is rolled out from a held-out state, and the
truth is torch-harmonics' solver continued from the same state (the data's trajectories are shorter than a
year). Reported per model, at days 10, 100 and 365: the global-mean layer height against the initial one
(the solver conserves it exactly; goal: drift within 1%), the energy (kinetic `h |u|^2 / 2` plus available
potential `g (h - mean h)^2 / 2`, area means) against the truth's at the same time (goal: within 25%), and
whether every value is finite, and the largest zonal-mean zonal wind beside the truth's (a superrotating
jet is how the networks' rollouts leave the flow). The kinetic-energy spectrum (per degree l, from the vector spherical-harmonic
transform of u and v) of the rollout and the truth at days 10, 100 and 365 is plotted to `--figure`.

    python benchmarks/long_rollout.py --data swe.nc --init 2001-04-25T00 \
        --model sfno=runs/swe/nonlinear-sfno/model --model fno=runs/swe/nonlinear-fno/model \
        --figure docs/figures/swe_long_rollout.png

`--prior NAME=BUNDLE_DIR` rolls that bundle's prior alone (its network's tendency set to zero, as
`evaluate` scores it); `--truncate-degree L` keeps only degrees up to L in every state a model produces,
the one it is fed next included; `--conservation mass,angular_momentum,energy` holds those laws
(`fno_forecast.models.conservation`) in the rollout of a bundle trained without them (`none`: drops a
bundle's own). `--steps` shorter than a year reports the days it reaches; `--days 50,70` reports more days.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import xarray as xr
from torch import nn
from torch_harmonics import InverseRealSHT, RealSHT, RealVectorSHT

from fno_forecast.bundle import load_bundle
from fno_forecast.data.channels import open_channels
from fno_forecast.data.timeaxis import times_to_hours
from fno_forecast.evaluation.prior import prior_stepper
from fno_forecast.models.conservation import Conservation, ConservationSpec
from fno_forecast.rollout import rollout

REPO = Path(__file__).resolve().parents[1]
DAYS = (10, 100, 365)  # plotted; `--days` adds days to the printed report


def load_make_swe():
    """data/make_swe.py as a module (a recipe script, not part of the package)."""
    spec = importlib.util.spec_from_file_location("make_swe", REPO / "data" / "make_swe.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def solver_truth(state: np.ndarray, *, steps: int, step_hours: float, mean_height: float) -> np.ndarray:
    """`(steps, 3, lat, lon)` of the solver continued from the grid state `(3, lat, lon)` (h, u, v)."""
    make_swe = load_make_swe()
    _, nlat, nlon = state.shape
    solver = make_swe.build_solver(nlat=nlat, nlon=nlon, step_hours=step_hours, mean_height=mean_height)
    solver = solver.double()
    grid = torch.from_numpy(state.astype(np.float64))
    with torch.inference_mode():
        spec = torch.cat([solver.grid2spec(grid[0] * solver.gravity)[None], solver.vrtdivspec(grid[1:])])
        substeps = round(step_hours * 3600.0 / solver.dt)
        out = np.empty((steps, *state.shape), dtype=np.float32)
        for i in range(steps):
            spec = solver.timestep(spec, substeps)
            out[i] = make_swe.to_grid(solver, spec)
    return out


class Sums:
    """The stepper's own area means, angular momentum and energy (`models.conservation.Conservation`,
    Clenshaw-Curtis weights on this equiangular grid), in float64, of `(3, lat, lon)` states (h, u, v):
    what the laws hold is what is reported."""

    def __init__(self, lat: np.ndarray, lon: np.ndarray) -> None:
        self.laws = Conservation(ConservationSpec(()), lat=lat, lon=lon, dtype=torch.float64)

    def _fields(self, state: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.asarray(state, dtype=np.float64))[None]

    def mean_height(self, state: np.ndarray) -> float:
        return float(self.laws.area_mean(self._fields(state)[:, 0]))

    def energy(self, state: np.ndarray) -> float:
        """Area-mean kinetic plus available potential energy (m^3 s^-2)."""
        h, u, v = self._fields(state).unbind(dim=1)
        return float(self.laws.energy(h, u, v))

    def angular_momentum(self, state: np.ndarray) -> float:
        """Area-mean axial angular momentum of the layer `h (u + Omega a cos(lat)) cos(lat)` (m3 s-1)."""
        fields = self._fields(state)
        return float(self.laws.angular_momentum(fields[:, 0], fields[:, 1]))


def zonal_wind(state: np.ndarray) -> float:
    """The largest zonal-mean zonal wind (m/s) over latitudes of `(3, lat, lon)`, westerly positive."""
    return float(state[1].astype(np.float64).mean(axis=-1).max())


def ke_spectrum(state: np.ndarray) -> np.ndarray:
    """Kinetic energy per degree l of the wind `(u, v)` (vector SHT, orthonormal; m > 0 counted twice)."""
    _, nlat, nlon = state.shape
    sht = RealVectorSHT(nlat, nlon, grid="equiangular").to(torch.float64)
    # torch-harmonics' vector transforms take (colatitude, longitude) components: (-v, u)
    wind = torch.from_numpy(np.stack([-state[2], state[1]]).astype(np.float64))
    with torch.no_grad():
        coefficients = sht(wind).abs().numpy() ** 2  # (2, l, m)
    weights = np.where(np.arange(coefficients.shape[-1]) == 0, 1.0, 2.0)
    return 0.5 * (coefficients * weights).sum(axis=(0, 2))


@dataclass(frozen=True)
class Report:
    name: str
    finite_steps: int
    height_drift: dict[int, float]
    energy_ratio: dict[int, float]
    spectra: dict[int, np.ndarray]
    zonal_wind: dict[int, float]  # the largest zonal-mean u (m/s) over latitudes
    momentum_drift: dict[int, float]  # angular momentum against the init's
    least_loss: float | None  # the energy law's least loss a step (1 - its energy_ratio); None: no law


class Truncated(nn.Module):
    """A stepper whose every output keeps only the spherical-harmonic degrees up to `degree` (what is fed
    back to the next step too): does cutting what the data never holds keep a rollout bounded?"""

    def __init__(self, stepper: nn.Module, *, degree: int, nlat: int, nlon: int) -> None:
        super().__init__()
        self.stepper = stepper
        self.degree = degree
        self.analysis = RealSHT(nlat, nlon, grid="equiangular").to(torch.float64)
        self.synthesis = InverseRealSHT(nlat, nlon, grid="equiangular").to(torch.float64)

    def forward(self, state: torch.Tensor, **kwargs: object) -> torch.Tensor:
        following = self.stepper(state, **kwargs)
        coefficients = self.analysis(following.double())
        kept = torch.arange(coefficients.shape[-2]).unsqueeze(-1) <= self.degree
        return self.synthesis(coefficients * kept).to(following.dtype)


def roll(
    path: Path,
    name: str,
    *,
    array: xr.DataArray,
    init: int,
    steps: int,
    truth: np.ndarray,
    days: tuple[int, ...] = DAYS,
    prior_only: bool = False,
    truncate_degree: int | None = None,
    conservation: tuple[str, ...] | None = None,
) -> Report:
    """Roll the bundle at `path` out (its prior alone with `prior_only`; each state cut to
    `truncate_degree` when given) and compare it with the truth at `days`."""
    bundle = load_bundle(path)
    if conservation is not None:  # the laws on the h, u, v channels of a make_swe.py set
        names = list(bundle.schema.channel_names)
        orders = tuple(1 if name in ("u", "v") else 0 for name in names)  # a wind component, a scalar
        spec = ConservationSpec(
            conservation, mass=names.index("h"), u=names.index("u"), v=names.index("v"), pole_orders=orders
        )
        lat, lon = np.asarray(array["lat"].values), np.asarray(array["lon"].values)
        bundle.stepper.conservation = Conservation(spec, lat=lat, lon=lon) if spec.laws else None
    laws = bundle.stepper.conservation
    least_loss = 1.0 - laws.spec.energy_ratio if laws is not None and "energy" in laws.spec.laws else None
    stepper = prior_stepper(bundle.stepper) if prior_only else bundle.stepper
    if stepper is None:
        raise SystemExit(f"--prior {name}={path}: the bundle has no prior")
    if truncate_degree is not None:
        stepper = Truncated(stepper, degree=truncate_degree, nlat=array.sizes["lat"], nlon=array.sizes["lon"])
    sums = Sums(np.asarray(array["lat"].values), np.asarray(array["lon"].values))
    hours = times_to_hours(np.asarray(array["time"].values))
    state = torch.from_numpy(np.asarray(array.isel(time=[init]).values, dtype=np.float32))
    previous = None
    if bundle.stepper.use_history:
        previous = torch.from_numpy(np.asarray(array.isel(time=[init - 1]).values, dtype=np.float32))
    start_height = sums.mean_height(state[0].numpy())
    start_momentum = sums.angular_momentum(state[0].numpy())
    drift, ratio, spectra, wind, momentum, finite = {}, {}, {}, {}, {}, 0
    with torch.inference_mode():
        produced = rollout(
            stepper,
            state,
            time_hours=torch.tensor([hours[init]], dtype=torch.float64),
            step_hours=bundle.step_hours,
            n_steps=steps,
            previous=previous,
            check_finite=False,  # a blow-up is a result here, counted below
        )
        for step, fields in enumerate(produced, start=1):
            values = fields[0].float().numpy()
            if not np.isfinite(values).all():
                break
            finite = step
            day = step * bundle.step_hours / 24.0
            if day in days:
                key = int(day)
                drift[key] = sums.mean_height(values) / start_height - 1.0
                ratio[key] = sums.energy(values) / sums.energy(truth[step - 1])
                spectra[key] = ke_spectrum(values)
                wind[key] = zonal_wind(values)
                momentum[key] = sums.angular_momentum(values) / start_momentum - 1.0
    return Report(
        name=name,
        finite_steps=finite,
        height_drift=drift,
        energy_ratio=ratio,
        spectra=spectra,
        zonal_wind=wind,
        momentum_drift=momentum,
        least_loss=least_loss,
    )


def plot(reports: list[Report], truth_spectra: dict[int, np.ndarray], figure_path: Path) -> None:
    from matplotlib.figure import Figure

    days = sorted(truth_spectra)
    figure = Figure(figsize=(4.0 * len(days), 3.6), layout="constrained")
    axes = figure.subplots(1, len(days), squeeze=False)[0]
    for axis, day in zip(axes, days, strict=True):
        degrees = np.arange(len(truth_spectra[day]))
        axis.loglog(degrees[1:], truth_spectra[day][1:], "k-", label="truth (solver)")
        for report in reports:
            if day in report.spectra:
                axis.loglog(degrees[1:], report.spectra[day][1:], "--", label=report.name)
        axis.set_title(f"day {day}")
        axis.set_xlabel("degree l")
    axes[0].set_ylabel("kinetic energy per degree (m2 s-2)")
    axes[0].legend(fontsize=8)
    figure_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = figure_path.with_suffix(".tmp.png")
    figure.savefig(tmp, dpi=110)
    tmp.replace(figure_path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="make_swe.py output")
    parser.add_argument("--init", required=True, help="init time (a held-out state), e.g. 2001-04-25T00")
    parser.add_argument("--model", action="append", default=[], help="NAME=BUNDLE_DIR (repeatable)")
    parser.add_argument(
        "--prior", action="append", default=[], help="NAME=BUNDLE_DIR: that bundle's prior alone, no network"
    )
    parser.add_argument(
        "--truncate-degree", type=int, help="keep only degrees up to this in every state rolled out"
    )
    parser.add_argument(
        "--conservation",
        help="laws held in every --model rollout, comma separated (none: the bundle's own dropped)",
    )
    parser.add_argument("--steps", type=int, default=1460)
    parser.add_argument(
        "--days", default="", help="more days to report, comma separated (10, 100 and 365 always are)"
    )
    parser.add_argument("--figure", type=Path, default=REPO / "docs" / "figures" / "swe_long_rollout.png")
    args = parser.parse_args(argv)
    if not args.model and not args.prior:
        parser.error("give at least one --model or --prior")
    array = open_channels(args.data).array
    times = np.asarray(array["time"].values)
    init = int(np.searchsorted(times, np.datetime64(args.init)))
    if init >= len(times) or times[init] != np.datetime64(args.init):
        parser.error(f"--init {args.init}: not a time in {args.data}")
    step_hours = float((times[1] - times[0]) / np.timedelta64(1, "h"))
    sums = Sums(np.asarray(array["lat"].values), np.asarray(array["lon"].values))
    state = np.asarray(array.isel(time=init).values)
    # the generator's own mean height (it sets the solver's time step), else the state's
    with xr.open_dataset(args.data) as raw:  # the channels keep no global attributes
        mean_height = float(raw.attrs.get("mean_height_m", sums.mean_height(state)))
    truth = solver_truth(state, steps=args.steps, step_hours=step_hours, mean_height=mean_height)
    days = [d for d in DAYS if round(d * 24 / step_hours) <= args.steps]  # a shorter `--steps` has fewer
    extra = {int(d) for d in args.days.split(",") if d.strip()}
    report_days = tuple(sorted(d for d in {*DAYS, *extra} if round(d * 24 / step_hours) <= args.steps))
    truth_spectra = {d: ke_spectrum(truth[round(d * 24 / step_hours) - 1]) for d in days}
    truth_energy = np.array([sums.energy(s) for s in [state, *truth]])
    per_day = round(24 / step_hours)
    losses = ", ".join(
        f"day {d} {1.0 - (truth_energy[i] / truth_energy[i - per_day]) ** (1.0 / per_day):.3%}"
        for d in report_days
        if (i := round(d * 24 / step_hours)) >= per_day
    )
    print(
        f"truth (solver from {args.init}, {args.steps} steps): energy {truth_energy[0]:.4g} at the init, "
        f"range over the year {truth_energy.min():.4g}..{truth_energy.max():.4g} (m3 s-2); energy lost a "
        f"step, over the day before: {losses}"
    )
    reports = []
    runs = [(item, False) for item in args.model] + [(item, True) for item in args.prior]
    for item, prior_only in runs:
        name, _, path = item.partition("=")
        report = roll(
            Path(path),
            name,
            array=array,
            init=init,
            steps=args.steps,
            truth=truth,
            days=report_days,
            prior_only=prior_only,
            truncate_degree=args.truncate_degree,
            conservation=None
            if args.conservation is None
            else tuple(law for law in args.conservation.split(",") if law and law != "none"),
        )
        reports.append(report)
        cells = [
            f"day {d}: height drift {report.height_drift[d]:+.3%}, energy / truth {report.energy_ratio[d]:.3f}, "
            f"angular momentum drift {report.momentum_drift[d]:+.4%}, "
            f"largest zonal-mean u {report.zonal_wind[d]:.3g} m/s (truth {zonal_wind(truth[round(d * 24 / step_hours) - 1]):.3g})"
            for d in report_days
            if d in report.height_drift
        ]
        law = ""
        if report.least_loss is not None:
            least = f"at least {report.least_loss:.3%} lost a step" if report.least_loss > 0 else "no gain"
            law = f" (its energy law: {least})"
        print(f"{name}{law}: finite for {report.finite_steps} of {args.steps} steps; " + "; ".join(cells))
    plot(reports, truth_spectra, args.figure)
    print(f"wrote {args.figure}")
    return 0 if math.isfinite(mean_height) else 1


if __name__ == "__main__":
    raise SystemExit(main())
