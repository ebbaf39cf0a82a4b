"""Scores of every system at one lead with 95% intervals, and paired comparisons with the model.

Input: per-init scores of each system on the same inits, in time order (`SkillAccumulator.per_init`).
Each interval has its own block length, from the decorrelation time of the series it summarises: a
system's squared-error series for its scores, the difference of the model's and the system's squared
errors for a comparison (resampled with one set of inits for both systems: paired). A climatology's
errors follow the weather regime and decorrelate over weeks, the model's short-lead errors over a day or
two; one block for all would make every interval as coarse as the slowest. Resampling is seeded per lead
and series, so the whole result is deterministic given the seed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from fno_forecast.evaluation.bootstrap import (
    BootstrapConfig,
    block_for,
    block_indices,
    decorrelation_time,
    percentile_interval,
    resampled_means,
)
from fno_forecast.evaluation.metrics import METRICS

PerInit = Mapping[str, Mapping[str, np.ndarray]]  # {system: {metric: (init, channel)}}


@dataclass(frozen=True)
class Comparison:
    """Model minus a baseline: point difference, its interval, and whether the interval excludes zero."""

    difference: float
    low: float
    high: float

    @property
    def significant(self) -> bool:
        return self.low > 0.0 or self.high < 0.0


@dataclass(frozen=True)
class LeadIntervals:
    """Intervals at one lead: `bounds[system][metric]` `(2, channel)`, `versus[system][metric][channel]`.

    `decorrelation[system]` is the decorrelation time (inits) of the system's squared errors,
    `difference_decorrelation[system]` that of the model's minus the system's.
    """

    decorrelation: dict[str, float]
    difference_decorrelation: dict[str, float]
    bounds: dict[str, dict[str, np.ndarray]]
    versus: dict[str, dict[str, list[Comparison | None]]]

    @property
    def blocks(self) -> dict[str, int]:
        return {system: block_for(tau) for system, tau in self.decorrelation.items()}

    @property
    def difference_blocks(self) -> dict[str, int]:
        return {system: block_for(tau) for system, tau in self.difference_decorrelation.items()}


def _statistic(metric: str, values: np.ndarray) -> np.ndarray:
    """The score from per-init values (over the first axis): RMSE from MSE, else the mean."""
    if metric == "rmse":
        return np.sqrt(np.mean(values, axis=0))
    if not np.isfinite(values).any():
        return np.full(values.shape[1:], np.nan)
    with np.errstate(invalid="ignore"):
        return np.nanmean(values, axis=0)


def _resampled(metric: str, values: np.ndarray, indices: np.ndarray) -> np.ndarray:
    means = resampled_means(values, indices)
    return np.sqrt(means) if metric == "rmse" else means


def series_decorrelation(values: np.ndarray, phase: np.ndarray | None = None) -> float:
    """The longest decorrelation time (inits) over the channels of `(init, channel)` values."""
    values = np.asarray(values)
    return max(decorrelation_time(values[:, c], phase=phase) for c in range(values.shape[1]))


def _compare(point: float, samples: np.ndarray, confidence: float) -> Comparison | None:
    if not math.isfinite(point) or not np.isfinite(samples).any():
        return None
    low, high = percentile_interval(samples, confidence)
    return Comparison(difference=point, low=float(low), high=float(high))


def _indices(n: int, tau: float, config: BootstrapConfig, seed: list[int]) -> np.ndarray:
    rng = np.random.default_rng([config.seed, *seed])
    return block_indices(n, block=block_for(tau), resamples=config.resamples, rng=rng)


def _comparisons(
    model: Mapping[str, np.ndarray], other: Mapping[str, np.ndarray], indices: np.ndarray, confidence: float
) -> dict[str, list[Comparison | None]]:
    out: dict[str, list[Comparison | None]] = {}
    for metric in METRICS:
        point = _statistic(metric, model[metric]) - _statistic(metric, other[metric])
        diff = _resampled(metric, model[metric], indices) - _resampled(metric, other[metric], indices)
        out[metric] = [_compare(float(point[c]), diff[:, c], confidence) for c in range(point.shape[0])]
    return out


def lead_intervals(
    per_init: PerInit,
    *,
    lead_index: int,
    config: BootstrapConfig = BootstrapConfig(),
    model: str = "model",
    phase: np.ndarray | None = None,
) -> LeadIntervals:
    """Bootstrap every system's scores and every comparison at one lead; `lead_index` seeds the lead.

    `phase` labels each init (its hour of day) for the decorrelation times (`bootstrap.decorrelation_time`).
    """
    n = len(np.asarray(per_init[model]["rmse"]))
    decorrelation, difference, bounds, versus = {}, {}, {}, {}
    for number, (system, scores) in enumerate(per_init.items()):
        decorrelation[system] = series_decorrelation(scores["rmse"], phase)
        indices = _indices(n, decorrelation[system], config, [lead_index, number])
        bounds[system] = {
            metric: percentile_interval(_resampled(metric, scores[metric], indices), config.confidence)
            for metric in METRICS
        }
        if system == model:
            continue
        own = np.asarray(per_init[model]["rmse"]) - np.asarray(scores["rmse"])
        difference[system] = series_decorrelation(own, phase)
        indices = _indices(n, difference[system], config, [lead_index, number, 1])
        versus[system] = _comparisons(per_init[model], scores, indices, config.confidence)
    return LeadIntervals(
        decorrelation=decorrelation, difference_decorrelation=difference, bounds=bounds, versus=versus
    )
