"""Choose the stepper's prior on held-out windows of the training period.

A prior is what an untrained stepper forecasts: damped anomaly persistence toward the climatology
(`training.relaxation`) or, on a global grid with both poles, the linear spectral dynamics
(`fno_forecast.models.linear_spectral`). Whether one helps depends on the data: with a climatology that a
short period cannot pin down, relaxing toward it pulls forecasts away from the truth. So each candidate is
checked out of sample inside the training period: climatology, relaxation rates and spectral maps fitted
on the first two thirds (and at least the annual cycle, less a month:
`climatology.cross_validation_split`), every forecast scored on the rest at the validation leads
(latitude-weighted RMSE over channel std, averaged over channels) against persistence. The best candidate
is kept when its mean ratio to persistence over the leads is below 1.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import xarray as xr

from fno_forecast.climatology import Climatology, cross_validation_split, fit_climatology
from fno_forecast.data.grid import latitude_weights
from fno_forecast.data.stats import BLOCK_BYTES, Moments, block_steps, frame_bytes
from fno_forecast.data.timeaxis import format_time, lead_steps_for, steps_before, times_to_hours
from fno_forecast.data.windows import window_starts
from fno_forecast.errors import ConfigError
from fno_forecast.models.linear_spectral import (
    MAX_UNKNOWNS,
    LinearSpectral,
    fit_linear_spectral,
    prior_fits,
    sphere_with_poles,
)
from fno_forecast.training.config import TrainConfig
from fno_forecast.training.relaxation import fit_relaxation

MAX_INITS = 256  # held-out inits per lead (evenly spaced) that the linear spectral rollouts score
# held-out steps read for the channels' spread, and inits per lead otherwise (evenly spaced): the check
# reads a bounded sample of a long training period, a chunk of inits at a time, never the period whole
MAX_STEPS = 1024
READ_BYTES = 2 * 2**30  # float32 bytes the scores of all leads read together, at most (`read_inits`)
MIN_INITS = 64
CHUNK_BYTES = BLOCK_BYTES  # the states of a chunk of inits and of their verifying times, in float64


def chunk_inits(array: xr.DataArray) -> int:
    """Inits per chunk: as many as `CHUNK_BYTES` holds (their states and their truths), at least one
    (the streaming passes' own block rule, `fno_forecast.data.stats.block_steps`)."""
    return block_steps(array, budget_bytes=CHUNK_BYTES // 2)


def read_inits(array: xr.DataArray, *, n_leads: int) -> int:
    """Inits per lead that `READ_BYTES` of reads allow (each reads its state and its truth), at least
    `MIN_INITS`: on a global grid of many channels every read is megabytes from the store."""
    frame = frame_bytes(array)
    return max(MIN_INITS, READ_BYTES // (2 * frame * max(n_leads, 1)))


def _steps(array: xr.DataArray, indices: np.ndarray) -> np.ndarray:
    return np.asarray(array.isel(time=indices).values, dtype=np.float64)


def _channel_std(array: xr.DataArray) -> np.ndarray:
    """Per-channel standard deviation over at most `MAX_STEPS` evenly spaced steps (fewer where a
    quarter of `READ_BYTES` does not hold them, at least `MIN_INITS`), read in chunks (the training
    statistics' shifted running sums, `fno_forecast.data.stats.Moments`)."""
    n_time = array.sizes["time"]
    most = min(MAX_STEPS, read_inits(array, n_leads=2))  # 2 leads x (state + truth): a quarter
    picked = np.linspace(0, n_time - 1, min(n_time, most)).round().astype(int)
    chunk = chunk_inits(array)
    moments = None
    for start in range(0, picked.size, chunk):
        block = _steps(array, picked[start : start + chunk])
        if moments is None:
            moments = Moments(block.mean(axis=(0, 2, 3)))
        moments.add(block)
    assert moments is not None  # at least one step
    return moments.mean_std()[1].clip(min=1e-12)


@dataclass(frozen=True)
class PriorCheck:
    """Held-out RMSE per lead (in units of channel std) of each candidate prior and of persistence."""

    lead_steps: tuple[int, ...]
    candidates: dict[str, tuple[float, ...]]  # "damped", "linear_spectral"
    persistence: tuple[float, ...]
    held_out: str

    def ratio(self, name: str) -> float:
        scores = np.asarray(self.candidates[name])
        return float(np.mean(scores / np.maximum(np.asarray(self.persistence), 1e-12)))

    @property
    def best(self) -> str | None:
        """The candidate with the lowest mean ratio to persistence, where it is below 1."""
        name = min(self.candidates, key=self.ratio)
        return name if self.ratio(name) < 1.0 else None

    def describe(self) -> str:
        if len(self.candidates) == 1:
            ((name, scores),) = self.candidates.items()
            pairs = ", ".join(
                f"{s} step(s) {p:.3f} vs {q:.3f}"
                for s, p, q in zip(self.lead_steps, scores, self.persistence, strict=True)
            )
            return (
                f"held-out {self.held_out}, prior vs persistence in std units: {pairs} "
                f"(mean ratio {self.ratio(name):.2f})"
            )
        names = list(self.candidates)
        rows = ", ".join(
            f"{s} step(s) "
            + " / ".join(f"{self.candidates[n][i]:.3f}" for n in names)
            + f" / {self.persistence[i]:.3f}"
            for i, s in enumerate(self.lead_steps)
        )
        ratios = ", ".join(f"{n} {self.ratio(n):.2f}" for n in names)
        return (
            f"held-out {self.held_out}, {' / '.join(names)} / persistence in std units: {rows} "
            f"(mean ratio to persistence: {ratios})"
        )


def check_prior(
    train_array: xr.DataArray,
    *,
    annual: int,
    diurnal: int,
    lead_steps: tuple[int, ...],
    damped: bool = True,
    linear_spectral: bool = False,
    step_hours: float = 0.0,
    fit_array: xr.DataArray | None = None,
) -> PriorCheck | None:
    """Score the candidate priors against persistence out of sample; None when the training period is too
    short (or the linear spectral maps cannot be fitted on its first two thirds).

    The candidates are fitted on the first two thirds and at least the annual cycle
    (`climatology.cross_validation_split`; of `fit_array`'s steps there when given: a sample of a long
    period, `fno_forecast.data.fit_sample`) and scored on the rest of `train_array`."""
    n_time = train_array.sizes["time"]
    split = cross_validation_split(times_to_hours(train_array["time"].values), annual=annual)
    n_terms = 1 + 2 * annual + 2 * diurnal
    longest = max(lead_steps)
    if split < max(2 * n_terms, 4) or n_time - split < longest + 2:
        return None
    first, rest = train_array.isel(time=slice(0, split)), train_array.isel(time=slice(split, None))
    if fit_array is not None:
        first = steps_before(fit_array, rest["time"].values[0])
        if first.sizes["time"] < max(2 * n_terms, 4):
            return None
    climatology = fit_climatology(first, annual=annual, diurnal=diurnal)
    spectral = None
    if linear_spectral:
        spectral = fit_linear_spectral(first, climatology, step_hours=step_hours)
        if spectral is None:
            return None
    keep = 1.0 - fit_relaxation(first, climatology).astype(np.float64) if damped else None
    times = rest["time"].values
    hours = times_to_hours(times)
    std = _channel_std(rest)
    per_chunk = chunk_inits(rest)
    weights = latitude_weights(rest["lat"].values)[None, None, :, None]
    names = [n for n, on in (("damped", damped), ("linear_spectral", spectral is not None)) if on]
    scores: dict[str, list[float]] = {name: [] for name in [*names, "persistence"]}
    for steps in lead_steps:
        inits = window_starts(times, target_steps=steps, use_history=False)
        if inits.size == 0:
            return None
        most = min(
            MAX_INITS if spectral is not None else MAX_STEPS, read_inits(rest, n_leads=len(lead_steps))
        )
        if inits.size > most:
            inits = inits[np.linspace(0, inits.size - 1, most).round().astype(int)]
        sums = {name: np.zeros(std.size) for name in scores}
        for start in range(0, inits.size, per_chunk):  # a chunk of inits in memory at a time
            chunk = inits[start : start + per_chunk]
            now = _steps(rest, chunk)
            truth = _steps(rest, chunk + steps)
            forecasts = {"persistence": now}
            if keep is not None:
                clim_now, clim_then = (
                    climatology.at_hours(hours[i]).astype(np.float64) for i in (chunk, chunk + steps)
                )
                forecasts["damped"] = clim_then + keep[None] ** steps * (now - clim_now)
            if spectral is not None:
                *_, last = spectral.prior_rollout(now, n_steps=steps)  # as the stepper steps
                forecasts["linear_spectral"] = last.astype(np.float64)
            for name, forecast in forecasts.items():
                sums[name] += (weights * (forecast - truth) ** 2).mean(axis=(2, 3)).sum(axis=0)
        for name, total in sums.items():
            scores[name].append(float(np.mean(np.sqrt(total / inits.size) / std)))
    held_out = f"{format_time(times[0])}/{format_time(times[-1])}"
    return PriorCheck(
        tuple(lead_steps),
        {name: tuple(scores[name]) for name in names},
        tuple(scores["persistence"]),
        held_out,
    )


@dataclass(frozen=True)
class PriorDecision:
    """The resolved config (its `prior` and `relaxation` say which prior), the fitted linear spectral
    model when that is the prior, and the decision with its reason (for the printed block and the card)."""

    config: TrainConfig
    spectral: LinearSpectral | None
    name: str  # the correction's name in `TrainingData.corrections`: "relaxation" or "prior"
    decision: dict[str, Any]


def decide_prior(
    config: TrainConfig,
    train_array: xr.DataArray,
    climatology: Climatology,
    *,
    step_hours: float,
    explicit: frozenset[str] | None,
    fit_array: xr.DataArray | None = None,
) -> PriorDecision:
    """Pick the stepper's prior as `config.prior` says (see `TrainConfig.prior`); the priors are fitted on
    `fit_array` when given (a sample of a long training period, `fno_forecast.data.fit_sample`)."""
    fit = train_array if fit_array is None else fit_array
    lead_steps = lead_steps_for(config.val_leads_hours, step_hours=step_hours)
    damped = config.relaxation and config.use_climatology
    _, channels, nlat, nlon = train_array.shape
    on_sphere = sphere_with_poles(train_array["lat"].values, train_array["lon"].values)
    fits = on_sphere and prior_fits(nlat=nlat, nlon=nlon, channels=channels)
    if config.prior == "none":
        return PriorDecision(
            replace(config, relaxation=False),
            None,
            "prior",
            {"kept": False, "why": "prior = none in the config"},
        )
    if config.prior == "linear_spectral":
        if not fits:
            raise ConfigError(
                f"prior = linear_spectral: needs a global equiangular grid with both poles on which the maps "
                f"fit (at most {MAX_UNKNOWNS} unknowns per map, every degree kept); the data's grid is "
                f"{nlat} x {nlon}{'' if on_sphere else ' without both poles or not global'}"
            )
        spectral = fit_linear_spectral(fit, climatology, step_hours=step_hours)
        if spectral is None:
            raise ConfigError("prior = linear_spectral: the training period holds too few consecutive steps")
        why = f"set in the config; {_spectral_summary(spectral)}"
        return PriorDecision(replace(config, relaxation=False), spectral, "prior", {"kept": True, "why": why})
    if config.prior == "damped" or not fits:
        return _decide_damped(
            config, train_array, lead_steps=lead_steps, explicit=explicit, damped=damped, fit_array=fit_array
        )
    check = check_prior(
        train_array,
        annual=config.climatology_annual,
        diurnal=config.climatology_diurnal,
        lead_steps=lead_steps,
        damped=damped,
        linear_spectral=True,
        step_hours=step_hours,
        fit_array=fit_array,
    )
    if check is None or check.best != "linear_spectral":
        return _decide_damped(
            config, train_array, lead_steps=lead_steps, explicit=explicit, damped=damped, fit_array=fit_array
        )
    spectral = fit_linear_spectral(fit, climatology, step_hours=step_hours)
    if spectral is None:  # the first two thirds held enough pairs, so the whole period does too
        raise AssertionError("fit_linear_spectral: no fit on the training period that its two thirds allowed")
    rivals = "the damped prior and persistence" if damped else "persistence"
    why = f"linear spectral beats {rivals}: {check.describe()}; {_spectral_summary(spectral)}"
    return PriorDecision(
        replace(config, relaxation=False, prior="linear_spectral"),
        spectral,
        "prior",
        {"kept": True, "why": why},
    )


def _spectral_summary(spectral: LinearSpectral) -> str:
    return (
        f"linear spectral prior of {spectral.degrees} degrees, order {spectral.order}, fitted on "
        f"{spectral.fitted_on} ({spectral.pairs} pairs, spectral radius {spectral.spectral_radius:.3f})"
    )


def _decide_damped(
    config: TrainConfig,
    train_array: xr.DataArray,
    *,
    lead_steps: tuple[int, ...],
    explicit: frozenset[str] | None,
    damped: bool,
    fit_array: xr.DataArray | None = None,
) -> PriorDecision:
    """Keep the damped-anomaly prior where it beats persistence on held-out training windows (or where the
    config sets it); no prior where it is ruled out."""
    if not damped:
        return PriorDecision(
            replace(config, prior="none"), None, "prior", {"kept": False, "why": "relaxation = false"}
        )
    given = explicit is None or "relaxation" in explicit or config.prior == "damped"
    check = check_prior(
        train_array,
        annual=config.climatology_annual,
        diurnal=config.climatology_diurnal,
        lead_steps=lead_steps,
        fit_array=fit_array,
    )
    kept = replace(config, prior="damped")
    if check is None:
        why = "training period too short to check out of sample"
        return PriorDecision(kept, None, "relaxation", {"kept": True, "why": why})
    if check.best == "damped" or given:
        why = ("set in the config; " if given and check.best is None else "") + check.describe()
        return PriorDecision(kept, None, "relaxation", {"kept": True, "why": why})
    return PriorDecision(
        replace(config, relaxation=False, prior="none"),
        None,
        "relaxation",
        {"kept": False, "why": "loses to persistence: " + check.describe()},
    )
