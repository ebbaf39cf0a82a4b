"""Which inits are scored at which leads: the protocol of an evaluation period.

Inits are the times inside the period (the WeatherBench 2 convention) whose previous step exists when the
model uses history. By default every lead of an init must verify somewhere in the data, possibly after
the period ends. With `verify_inside` a lead of an init is scored only when its verifying time lies
inside the period too, so nothing after the period is ever looked at: long leads then have fewer inits
(the last `lead` hours of the period start none). `init_stride` keeps every n-th of those inits, in
time order (neighbouring inits share their weather: on a big grid a stride costs little information and
saves most of the time).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fno_forecast.data.timeaxis import MONTHLY_MIN_HOURS


@dataclass(frozen=True)
class InitSelection:
    """Init indices `(n,)`, verifying indices `(n, lead)` (-1: not scored), previous indices or None.

    `scored[i, j]` says whether init i is scored at lead j.
    """

    inits: np.ndarray
    verify: np.ndarray
    previous: np.ndarray | None

    @property
    def scored(self) -> np.ndarray:
        return self.verify >= 0

    def counts(self) -> tuple[int, ...]:
        """Inits scored at each lead."""
        return tuple(int(n) for n in self.scored.sum(axis=0))


def _lookup(hours: np.ndarray, target: np.ndarray, *, tolerance: float = 1e-6) -> np.ndarray:
    """Index of each target hour in `hours` (sorted), -1 where it is absent (times may have gaps).

    The nearest time within `tolerance` hours counts: calendar months differ in length, so a monthly step in
    hours (`HOURS_PER_MONTH`) lands days off the verifying time after a few steps (`_tolerance`)."""
    right = np.clip(np.searchsorted(hours, target), 0, len(hours) - 1)
    left = np.clip(right - 1, 0, len(hours) - 1)
    index = np.where(np.abs(hours[left] - target) < np.abs(hours[right] - target), left, right)
    return np.where(np.abs(hours[index] - target) < tolerance, index, -1)


def _tolerance(step_hours: float) -> float:
    """A quarter step for monthly or coarser steps, exact matches otherwise."""
    return step_hours / 4.0 if step_hours >= MONTHLY_MIN_HOURS else 1e-6


def select_inits(
    hours: np.ndarray,
    *,
    in_period: np.ndarray,
    steps: Sequence[int],
    step_hours: float,
    use_history: bool,
    verify_inside: bool = False,
    init_stride: int = 1,
) -> InitSelection:
    """The inits and per-lead verifying indices of a period (see the module docstring)."""
    if init_stride < 1:
        raise ValueError(f"init_stride: expected >= 1, got {init_stride}")
    hours = np.asarray(hours, dtype=np.float64)
    candidates = np.flatnonzero(in_period)
    tolerance = _tolerance(step_hours)
    verify = _lookup(
        hours,
        hours[candidates, None] + np.asarray(steps, dtype=np.float64)[None, :] * step_hours,
        tolerance=tolerance,
    )
    if verify_inside:
        inside = np.asarray(in_period, dtype=bool)[np.clip(verify, 0, None)]
        verify = np.where(inside, verify, -1)
        ok = (verify >= 0).any(axis=1)
    else:
        ok = (verify >= 0).all(axis=1)
    previous = None
    if use_history:
        previous = _lookup(hours, hours[candidates] - step_hours, tolerance=tolerance)
        ok &= previous >= 0
    kept = np.flatnonzero(ok)[::init_stride]
    return InitSelection(
        inits=candidates[kept], verify=verify[kept], previous=None if previous is None else previous[kept]
    )


def verifiable_inits(
    hours: np.ndarray, *, in_period: np.ndarray, steps: Sequence[int], step_hours: float, use_history: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Init indices inside the period whose verifying times (and previous step) exist in the data.

    Returns `(inits, verify (init, lead) indices, previous indices or None)`; times may have gaps.
    """
    chosen = select_inits(
        hours, in_period=in_period, steps=steps, step_hours=step_hours, use_history=use_history
    )
    return chosen.inits, chosen.verify, chosen.previous
