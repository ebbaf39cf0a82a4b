"""Scoring runs as the analyses that verify them arrive: the running scorecard behind GET /v1/verification.

Each lead of a run is scored once, when the analysis at its valid time is held, with the library's own
metrics (`fno_forecast.evaluation.metrics`: latitude-weighted MSE and anomaly correlation against the
bundle's climatology, weights from `fno_forecast.data.grid.latitude_weights`) for the model and for the
two baselines a model has to beat (`fno_forecast.evaluation.baselines`: persistence of the run's own
analysis, and the climatology). Per run the scores are kept per lead; over the last N runs they combine
as the library's `SkillAccumulator` does: RMSE is the root of the mean squared error, ACC the mean over
the runs where it is defined.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from fno_forecast.data.grid import latitude_weights
from fno_forecast.data.timeaxis import format_time, times_to_hours
from fno_forecast.evaluation.baselines import climatology_forecast, persistence_forecast
from fno_forecast.evaluation.metrics import anomaly_correlation, weighted_mse
from service.analyses import AnalysisSet
from service.engine import RolloutData

SYSTEMS = ("model", "persistence", "climatology")


@dataclass(frozen=True)
class LeadScore:
    """One lead of one run: `mse` and `acc` per system, each `(channel,)` float64."""

    valid_time: str
    mse: dict[str, np.ndarray]
    acc: dict[str, np.ndarray]


def score_lead(
    *,
    forecast: np.ndarray,
    truth: np.ndarray,
    init_state: np.ndarray,
    valid_hours: float,
    lead: float,
    climatology: Any,
    lat: np.ndarray,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """MSE and ACC `(channel,)` of the model and the baselines for one lead; fields `(channel, lat, lon)`."""
    weights = latitude_weights(lat)
    hours = np.asarray([valid_hours])
    clim = climatology_forecast(climatology, valid_hours=hours)
    fields = {
        "model": forecast[None],
        "persistence": persistence_forecast(init_state[None], lead_hours=lead),
        "climatology": clim,
    }
    truth = truth[None]
    mse = {name: weighted_mse(field, truth, weights)[0] for name, field in fields.items()}
    acc = {name: anomaly_correlation(field, truth, clim, weights)[0] for name, field in fields.items()}
    return mse, acc


def _named(values: np.ndarray, channels: tuple[str, ...]) -> dict[str, float | None]:
    return {
        name: (round(float(v), 6) if np.isfinite(v) else None)
        for name, v in zip(channels, values, strict=True)
    }


class Verifier:
    """Scores per model, run and lead; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scores: dict[str, dict[str, dict[float, LeadScore]]] = {}
        self._channels: dict[str, tuple[str, ...]] = {}

    def score(
        self, model_id: str, data: RolloutData, *, analyses: AnalysisSet, climatology: Any
    ) -> list[float]:
        """Score the leads of `data` whose valid time has an analysis and that are not scored yet; returns them."""
        run = data.key.run
        with self._lock:
            done = set(self._scores.get(model_id, {}).get(run, {}))
        init_state = analyses.state(data.init_time, data.channels)
        if init_state is None:
            return []
        valid = data.valid_times
        scored: dict[float, LeadScore] = {}
        for index, lead in enumerate(np.asarray(data.lead_hours, dtype=np.float64)):
            if float(lead) in done:
                continue
            truth = analyses.state(valid[index], data.channels)
            if truth is None:
                continue
            mse, acc = score_lead(
                forecast=data.values[index],
                truth=truth,
                init_state=init_state,
                valid_hours=float(times_to_hours(valid[index : index + 1])[0]),
                lead=float(lead),
                climatology=climatology,
                lat=data.lat,
            )
            scored[float(lead)] = LeadScore(format_time(valid[index]), mse, acc)
        if scored:
            with self._lock:
                self._scores.setdefault(model_id, {}).setdefault(run, {}).update(scored)
                self._channels[model_id] = data.channels
        return sorted(scored)

    def forget(self, model_id: str, run: str) -> None:
        with self._lock:
            self._scores.get(model_id, {}).pop(run, None)

    def scorecard(self, model_id: str, *, last: int) -> dict[str, Any]:
        """Per lead over the last `last` runs scored (RMSE, ACC per system and variable, and the run count),
        and per run."""
        with self._lock:
            runs = {run: dict(leads) for run, leads in self._scores.get(model_id, {}).items()}
            channels = self._channels.get(model_id, ())
        chosen = sorted(runs)[-last:] if last > 0 else []
        leads = sorted({lead for run in chosen for lead in runs[run]})
        per_lead = []
        for lead in leads:
            scores = [runs[run][lead] for run in chosen if lead in runs[run]]
            row: dict[str, Any] = {"lead_hours": lead, "runs": len(scores), "rmse": {}, "acc": {}}
            for system in SYSTEMS:
                mse = np.mean([s.mse[system] for s in scores], axis=0)
                acc = np.stack([s.acc[system] for s in scores])
                defined = np.isfinite(acc).sum(axis=0)
                with np.errstate(invalid="ignore", divide="ignore"):
                    mean_acc = np.where(defined > 0, np.nansum(acc, axis=0) / np.maximum(defined, 1), np.nan)
                row["rmse"][system] = _named(np.sqrt(mse), channels)
                row["acc"][system] = _named(mean_acc, channels)
            per_lead.append(row)
        per_run = [
            {
                "run": run,
                "leads": [
                    {
                        "lead_hours": lead,
                        "valid_time": score.valid_time,
                        "rmse": {s: _named(np.sqrt(score.mse[s]), channels) for s in SYSTEMS},
                        "acc": {s: _named(score.acc[s], channels) for s in SYSTEMS},
                    }
                    for lead, score in sorted(runs[run].items())
                ],
            }
            for run in sorted(runs)
        ]
        return {"runs_used": chosen, "per_lead": per_lead, "per_run": per_run}
