"""The score card: skill of a model and its baselines per variable, lead and metric, with 95% intervals.

`Scorecard.to_dict()` is the JSON of `fno-forecast evaluate --json` and the skill card a bundle carries:

    {"model": ..., "data": ..., "period": [start, end], "inits": N, "units": {...},
     "protocol": {"verify_inside": true, "inits_per_lead": {"6": 368, ...}, "bootstrap": {...}, ...},
     "scores": [{"variable": "air", "lead_hours": 24, "metric": "rmse",
                 "model": 1.6, "persistence": 2.0, "climatology": 2.6, "prior": 1.9, "linear_ar": 2.0,
                 "ci95": {"model": [1.5, 1.7], ...},
                 "versus": {"persistence": {"difference": -0.4, "ci95": [-0.5, -0.3],
                                            "significant": true}, ...}}, ...],
     "folds": [{...a card of the same form per rolling-origin fold, without "model" and "data"...}]}

Undefined values (the ACC of the climatology forecast against itself) are `null`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fno_forecast.evaluation.intervals import LeadIntervals
from fno_forecast.evaluation.metrics import METRICS

SYSTEMS: tuple[str, ...] = ("model", "persistence", "climatology")
ROW_KEYS: tuple[str, ...] = ("variable", "lead_hours", "metric", "ci95", "versus")


def _number(value: float) -> float | None:
    value = float(value)
    return round(value, 6) if math.isfinite(value) else None


def _pair(low: float, high: float) -> tuple[float, float] | None:
    a, b = _number(low), _number(high)
    return None if a is None or b is None else (a, b)


@dataclass(frozen=True)
class ScoreRow:
    """One line of the score card: every system's score, its 95% interval and the model's comparisons.

    `others` holds the systems beyond the three core ones (the prior, the linear baseline, ...);
    `ci95[system]` is `(low, high)`; `versus[system]` is `{"difference": model - system, "ci95": (low,
    high), "significant": bool}`. Cards written before intervals existed have neither.
    """

    variable: str
    lead_hours: float
    metric: str
    model: float | None
    persistence: float | None
    climatology: float | None
    others: Mapping[str, float | None] = field(default_factory=dict)
    ci95: Mapping[str, tuple[float, float] | None] = field(default_factory=dict)
    versus: Mapping[str, Mapping[str, Any] | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(f"ScoreRow.metric: {self.metric!r} is not one of {METRICS}")

    def value(self, system: str) -> float | None:
        return getattr(self, system) if system in SYSTEMS else self.others.get(system)

    def to_dict(self) -> dict[str, Any]:
        lead = int(self.lead_hours) if float(self.lead_hours).is_integer() else self.lead_hours
        out: dict[str, Any] = {
            "variable": self.variable,
            "lead_hours": lead,
            "metric": self.metric,
            "model": self.model,
            "persistence": self.persistence,
            "climatology": self.climatology,
            **dict(self.others),
        }
        if self.ci95:
            out["ci95"] = {k: None if v is None else list(v) for k, v in self.ci95.items()}
        if self.versus:
            out["versus"] = {
                k: None if v is None else {**v, "ci95": list(v["ci95"])} for k, v in self.versus.items()
            }
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ScoreRow:
        others = {k: v for k, v in data.items() if k not in ROW_KEYS and k not in SYSTEMS}
        ci95 = {k: None if v is None else (v[0], v[1]) for k, v in dict(data.get("ci95") or {}).items()}
        versus = {
            k: None if v is None else {**v, "ci95": (v["ci95"][0], v["ci95"][1])}
            for k, v in dict(data.get("versus") or {}).items()
        }
        core = {k: data[k] for k in ("variable", "lead_hours", "metric", *SYSTEMS)}
        return cls(**core, others=others, ci95=ci95, versus=versus)


def _row(
    results: Mapping[str, Mapping[str, Mapping[float, np.ndarray]]],
    *,
    name: str,
    index: int,
    metric: str,
    lead: float,
    intervals: LeadIntervals | None,
) -> ScoreRow:
    values = {s: _number(results[s][metric][lead][index]) for s in results}
    ci95: dict[str, tuple[float, float] | None] = {}
    versus: dict[str, dict[str, Any] | None] = {}
    if intervals is not None:
        for system in results:
            bounds = intervals.bounds[system][metric][:, index]
            ci95[system] = None if values[system] is None else _pair(bounds[0], bounds[1])
        for system, by_metric in intervals.versus.items():
            found = by_metric[metric][index]
            versus[system] = (
                None
                if found is None
                else {
                    "difference": _number(found.difference),
                    "ci95": _pair(found.low, found.high),
                    "significant": found.significant,
                }
            )
    others = {s: v for s, v in values.items() if s not in SYSTEMS}
    core = {s: values[s] for s in SYSTEMS}
    return ScoreRow(
        variable=name, lead_hours=lead, metric=metric, **core, others=others, ci95=ci95, versus=versus
    )


@dataclass(frozen=True)
class Scorecard:
    """Skill over `inits` init times of `period`; `units` maps variable names to units.

    `protocol` records how it was scored (`fno_forecast.evaluation.protocol`); `folds` holds the cards
    of rolling-origin folds (`fno_forecast.evaluation.folds`), each scored on its own period.
    """

    model: str
    data: str
    period: tuple[str, str]
    inits: int
    rows: tuple[ScoreRow, ...]
    units: Mapping[str, str] = field(default_factory=dict)
    protocol: Mapping[str, Any] = field(default_factory=dict)
    folds: tuple[Scorecard, ...] = ()

    def __post_init__(self) -> None:
        if self.inits < 0:
            raise ValueError(f"Scorecard.inits: must be >= 0, got {self.inits}")
        if len(self.period) != 2:
            raise ValueError(f"Scorecard.period: expected (start, end), got {self.period!r}")

    @classmethod
    def from_results(
        cls,
        *,
        model: str,
        data: str,
        period: tuple[str, str],
        inits: int,
        channels: Sequence[str],
        results: Mapping[str, Mapping[str, Mapping[float, np.ndarray]]],
        units: Mapping[str, str] | None = None,
        intervals: Mapping[float, LeadIntervals] | None = None,
        protocol: Mapping[str, Any] | None = None,
    ) -> Scorecard:
        """Build from `{system: SkillAccumulator.result()}` for each of `SYSTEMS` and any others.

        `intervals` maps each lead to its bootstrap (`fno_forecast.evaluation.intervals`).
        """
        missing = [s for s in SYSTEMS if s not in results]
        if missing:
            raise ValueError(f"Scorecard.from_results: results lack the systems {missing}")
        leads = sorted(results["model"]["rmse"])
        rows = [
            _row(
                results,
                name=name,
                index=index,
                metric=metric,
                lead=lead,
                intervals=None if intervals is None else intervals[lead],
            )
            for index, name in enumerate(channels)
            for metric in METRICS
            for lead in leads
        ]
        return cls(
            model=model,
            data=data,
            period=period,
            inits=inits,
            rows=tuple(rows),
            units=dict(units or {}),
            protocol=dict(protocol or {}),
        )

    @property
    def systems(self) -> tuple[str, ...]:
        extra = dict.fromkeys(s for row in self.rows for s in row.others)
        return (*SYSTEMS, *extra)

    @property
    def variables(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(row.variable for row in self.rows))

    @property
    def leads(self) -> tuple[float, ...]:
        return tuple(sorted({row.lead_hours for row in self.rows}))

    def row(self, *, variable: str, metric: str, lead: float) -> ScoreRow | None:
        for r in self.rows:
            if r.variable == variable and r.metric == metric and r.lead_hours == float(lead):
                return r
        return None

    def series(self, *, variable: str, metric: str, system: str) -> list[float | None]:
        """One system's values of one metric against `leads`."""
        rows = [self.row(variable=variable, metric=metric, lead=lead) for lead in self.leads]
        return [None if r is None else r.value(system) for r in rows]

    def interval_series(self, *, variable: str, metric: str, system: str) -> list[tuple[float, float] | None]:
        """One system's 95% intervals of one metric against `leads` (None where the card has none)."""
        rows = [self.row(variable=variable, metric=metric, lead=lead) for lead in self.leads]
        return [None if r is None else r.ci95.get(system) for r in rows]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "model": self.model,
            "data": self.data,
            "period": list(self.period),
            "inits": self.inits,
            "units": dict(self.units),
        }
        if self.protocol:
            out["protocol"] = dict(self.protocol)
        out["scores"] = [row.to_dict() for row in self.rows]
        if self.folds:
            # a fold shares the card's model and data: not repeated (nor a second place for a path)
            out["folds"] = [
                {k: v for k, v in fold.to_dict().items() if k not in ("model", "data")} for fold in self.folds
            ]
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n"


def scorecard_from_dict(data: Mapping[str, Any]) -> Scorecard:
    """Read back the JSON form (a skill card stored in a bundle, or an `evaluate --json` file)."""
    try:
        return Scorecard(
            model=str(data["model"]),
            data=str(data["data"]),
            period=(str(data["period"][0]), str(data["period"][1])),
            inits=int(data["inits"]),
            rows=tuple(ScoreRow.from_dict(row) for row in data["scores"]),
            units=dict(data.get("units", {})),
            protocol=dict(data.get("protocol", {})),
            folds=tuple(
                scorecard_from_dict({"model": data["model"], "data": data["data"], **fold})
                for fold in data.get("folds", ())
            ),
        )
    except (KeyError, TypeError, IndexError) as error:
        raise ValueError(f"score card: malformed ({error!r})") from error


def write_scorecard(card: Scorecard, path: str | Path) -> Path:
    """Write the JSON form atomically."""
    from fno_forecast.output import write_text_atomic

    return write_text_atomic(path, card.to_json())
