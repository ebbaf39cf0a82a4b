"""Run every scored system over one chunk of inits: the model, its prior, and the reference forecasts.

A chunk's data are read once as one numpy window covering its inits, their history (the previous step,
the recent-anomaly windows) and their verifying times. Each stepper-driven system (the model, the prior
variants) is rolled out once to the longest lead any of the chunk's inits is scored at, and each lead
is scored the moment the rollout reaches it, only on the inits scored at that lead; persistence,
climatology and the linear baselines are scored on the same inits.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import xarray as xr

from fno_forecast.bundle import Bundle
from fno_forecast.data.windows import read_steps
from fno_forecast.evaluation.baselines import BASELINES, baseline_forecast
from fno_forecast.evaluation.metrics import SkillAccumulator
from fno_forecast.evaluation.prior import RolloutSystem
from fno_forecast.evaluation.selection import InitSelection
from fno_forecast.lead_calibration import calibrate
from fno_forecast.linear_ar import LinearAR
from fno_forecast.models.linear_spectral import LinearSpectral
from fno_forecast.recent_anomaly import offsets_at
from fno_forecast.rollout import rollout


@dataclass(frozen=True)
class Plan:
    """What is scored: the data, the leads (hours and steps), the inits, and the systems."""

    bundle: Bundle
    array: xr.DataArray
    hours: np.ndarray
    leads: tuple[float, ...]
    steps: tuple[int, ...]
    selection: InitSelection
    rollouts: tuple[RolloutSystem, ...]
    linear: LinearAR | None
    spectral: LinearSpectral | None  # the linear spectral baseline (global grids with both poles)
    history_steps: int | None  # recent-anomaly windows limited to this many steps up to the init
    init_stride: int = 1  # every n-th init of the period is scored

    @property
    def uses_offsets(self) -> bool:
        return any(s.recent_anomaly for s in self.rollouts) and self.bundle.recent_anomaly is not None


@dataclass(frozen=True)
class Chunk:
    """One chunk of inits with the data steps it reads (`window`: its inits' states, their verifying
    states and previous states, in time order); `positions`, `verify` and `previous` index the window
    (`verify` -1: not scored), `inits` are the inits' time steps in the data."""

    window: np.ndarray
    inits: np.ndarray
    positions: np.ndarray
    verify: np.ndarray
    previous: np.ndarray | None
    init_hours: np.ndarray

    @property
    def state(self) -> np.ndarray:
        return self.window[self.positions]

    def truth(self, column: int) -> tuple[np.ndarray, np.ndarray]:
        """`(mask of the chunk's inits scored at this lead, their verifying states)`."""
        mask = self.verify[:, column] >= 0
        return mask, self.window[self.verify[mask, column]]


def read_chunk(plan: Plan, rows: slice) -> Chunk:
    """Read the steps that `plan.selection`'s inits `rows` are scored on: their states, verifying and
    previous states only (on a large grid the span between strided inits is gigabytes nobody needs)."""
    chosen = plan.selection
    inits, verify = chosen.inits[rows], chosen.verify[rows]
    previous = None if chosen.previous is None else chosen.previous[rows]
    needed = np.unique(
        np.concatenate([inits, verify[verify >= 0], *([] if previous is None else [previous])])
    )
    return Chunk(
        window=read_steps(plan.array, needed),
        inits=inits,
        positions=np.searchsorted(needed, inits),
        verify=np.where(verify >= 0, np.searchsorted(needed, np.maximum(verify, 0)), -1),
        previous=None if previous is None else np.searchsorted(needed, previous),
        init_hours=plan.hours[inits],
    )


def chunk_offsets(plan: Plan, chunk: Chunk, used: Counter[float]) -> np.ndarray | None:
    """The recent-anomaly offsets of the chunk's inits (None when no system uses them); counts windows used.

    With `plan.history_steps` each init sees only that many steps up to itself, as a forecast served
    from that much history does.
    """
    if not plan.uses_offsets:
        return None
    bundle = plan.bundle
    offsets, days = offsets_at(
        bundle.recent_anomaly,
        climatology=bundle.climatology,
        array=plan.array,
        positions=chunk.inits,
        step_hours=bundle.step_hours,
        history_steps=plan.history_steps,
    )
    used.update(days)
    return offsets


def _needed_steps(plan: Plan, chunk: Chunk) -> dict[int, int]:
    """`{step: lead column}` of the leads at which any of the chunk's inits is scored."""
    return {step: j for j, step in enumerate(plan.steps) if (chunk.verify[:, j] >= 0).any()}


def _add(accumulator: SkillAccumulator, plan: Plan, chunk: Chunk, column: int, fields: np.ndarray) -> None:
    mask, truth = chunk.truth(column)
    lead = plan.leads[column]
    clim = plan.bundle.climatology.at_hours(chunk.init_hours[mask] + lead)
    accumulator.add(lead, np.asarray(fields)[mask], truth, clim)


def score_rollouts(
    plan: Plan,
    chunk: Chunk,
    accumulators: dict[str, SkillAccumulator],
    *,
    offsets: np.ndarray | None,
    keep: float | None = None,
) -> np.ndarray | None:
    """Roll out every stepper system and score it; returns the model's fields at lead `keep` (or None)."""
    wanted = _needed_steps(plan, chunk)
    device = next(iter(plan.bundle.stepper.buffers())).device
    calibration = plan.bundle.lead_calibration
    kept = None
    for system in plan.rollouts:
        offset = (
            torch.from_numpy(offsets).to(device) if system.recent_anomaly and offsets is not None else None
        )
        calibrated = system.lead_calibration and calibration is not None
        previous = (
            None if chunk.previous is None else torch.from_numpy(chunk.window[chunk.previous]).to(device)
        )
        hours = torch.from_numpy(chunk.init_hours).to(device)
        with torch.inference_mode():
            initial = torch.from_numpy(chunk.state).to(device)
            states = rollout(
                system.stepper,
                initial,
                time_hours=hours,
                step_hours=plan.bundle.step_hours,
                n_steps=max(wanted),
                previous=previous,
                climatology_offset=offset,
            )
            produced = calibrate(
                states,
                stepper=system.stepper,
                state=initial,
                time_hours=hours,
                calibration=calibration if calibrated else None,
                climatology_offset=offset,
                previous=previous,
            )
            for step, fields in enumerate(produced, start=1):
                if step in wanted:
                    predicted = fields.float().cpu().numpy()
                    _add(accumulators[system.name], plan, chunk, wanted[step], predicted)
                    if system.name == "model" and plan.leads[wanted[step]] == keep:
                        kept = predicted
    return kept


def score_references(plan: Plan, chunk: Chunk, accumulators: dict[str, SkillAccumulator]) -> None:
    """Score persistence, climatology and (when fitted) the linear baselines on the chunk's inits."""
    wanted = _needed_steps(plan, chunk)
    for column in wanted.values():
        lead = plan.leads[column]
        for name in BASELINES:
            fields = baseline_forecast(
                name,
                init_state=chunk.state,
                lead_hours=lead,
                valid_hours=chunk.init_hours + lead,
                climatology=plan.bundle.climatology,
            )
            _add(accumulators[name], plan, chunk, column, fields)
    for name, linear in (("linear_ar", plan.linear), ("linear_spectral", plan.spectral)):
        if linear is None:
            continue
        produced = linear.rollout(
            chunk.state, init_hours=chunk.init_hours, step_hours=plan.bundle.step_hours, n_steps=max(wanted)
        )
        for step, fields in enumerate(produced, start=1):
            if step in wanted:
                _add(accumulators[name], plan, chunk, wanted[step], fields)


def system_names(plan: Plan) -> Sequence[str]:
    """Every system the plan scores, in card order."""
    names = [s.name for s in plan.rollouts if s.name == "model"] + list(BASELINES)
    names += [s.name for s in plan.rollouts if s.name != "model"]
    names += ["linear_ar"] if plan.linear is not None else []
    return names + (["linear_spectral"] if plan.spectral is not None else [])
