"""The score card: skill of a model and its baselines per variable, lead and metric.

`Scorecard.to_dict()` is the JSON of `fno-forecast evaluate --json` and the skill card a bundle carries:

    {"model": ..., "data": ..., "period": [start, end], "inits": N,
     "scores": [{"variable": "air", "lead_hours": 24, "metric": "rmse",
                 "model": 1.6, "persistence": 2.0, "climatology": 2.6}, ...]}

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

from fno_forecast.evaluation.metrics import METRICS

SYSTEMS: tuple[str, ...] = ("model", "persistence", "climatology")
METRIC_LABELS: dict[str, str] = {"rmse": "RMSE", "acc": "ACC", "bias": "bias"}


def _number(value: float) -> float | None:
    value = float(value)
    return round(value, 6) if math.isfinite(value) else None


@dataclass(frozen=True)
class ScoreRow:
    """One line of the score card."""

    variable: str
    lead_hours: float
    metric: str
    model: float | None
    persistence: float | None
    climatology: float | None

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(f"ScoreRow.metric: {self.metric!r} is not one of {METRICS}")

    def to_dict(self) -> dict[str, Any]:
        lead = int(self.lead_hours) if float(self.lead_hours).is_integer() else self.lead_hours
        return {
            "variable": self.variable,
            "lead_hours": lead,
            "metric": self.metric,
            "model": self.model,
            "persistence": self.persistence,
            "climatology": self.climatology,
        }


@dataclass(frozen=True)
class Scorecard:
    """Skill over `inits` init times of `period`; `units` maps variable names to units."""

    model: str
    data: str
    period: tuple[str, str]
    inits: int
    rows: tuple[ScoreRow, ...]
    units: Mapping[str, str] = field(default_factory=dict)

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
    ) -> Scorecard:
        """Build from `{system: SkillAccumulator.result()}` for each of `SYSTEMS`."""
        missing = [s for s in SYSTEMS if s not in results]
        if missing:
            raise ValueError(f"Scorecard.from_results: results lack the systems {missing}")
        leads = sorted(results["model"]["rmse"])
        rows = []
        for index, name in enumerate(channels):
            for metric in METRICS:
                for lead in leads:
                    values = {s: _number(results[s][metric][lead][index]) for s in SYSTEMS}
                    rows.append(ScoreRow(variable=name, lead_hours=lead, metric=metric, **values))
        return cls(
            model=model, data=data, period=period, inits=inits, rows=tuple(rows), units=dict(units or {})
        )

    @property
    def variables(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(row.variable for row in self.rows))

    @property
    def leads(self) -> tuple[float, ...]:
        return tuple(sorted({row.lead_hours for row in self.rows}))

    def series(self, *, variable: str, metric: str, system: str) -> list[float | None]:
        """One system's values of one metric against `leads`."""
        by_lead = {
            r.lead_hours: getattr(r, system)
            for r in self.rows
            if r.variable == variable and r.metric == metric
        }
        return [by_lead.get(lead) for lead in self.leads]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "data": self.data,
            "period": list(self.period),
            "inits": self.inits,
            "units": dict(self.units),
            "scores": [row.to_dict() for row in self.rows],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n"

    def format_table(self) -> str:
        """A plain-text table, one block per variable and metric, leads as rows."""
        lines = [
            f"model {self.model}",
            f"data {self.data}",
            f"period {self.period[0]} .. {self.period[1]}, {self.inits} inits",
        ]
        for variable in self.variables:
            units = self.units.get(variable, "")
            for metric in METRICS:
                label = METRIC_LABELS[metric] + (f" ({units})" if metric != "acc" and units else "")
                lines += [
                    "",
                    f"{variable} {label}",
                    f"{'lead h':>8} {'model':>10} {'persist':>10} {'climat':>10}",
                ]
                for row in self.rows:
                    if row.variable == variable and row.metric == metric:
                        cells = [_cell(getattr(row, s)) for s in SYSTEMS]
                        lines.append(f"{row.lead_hours:>8g} " + " ".join(f"{c:>10}" for c in cells))
        return "\n".join(lines) + "\n"


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def scorecard_from_dict(data: Mapping[str, Any]) -> Scorecard:
    """Read back the JSON form (a skill card stored in a bundle, or an `evaluate --json` file)."""
    try:
        rows = tuple(ScoreRow(**row) for row in data["scores"])
        return Scorecard(
            model=str(data["model"]),
            data=str(data["data"]),
            period=(str(data["period"][0]), str(data["period"][1])),
            inits=int(data["inits"]),
            rows=rows,
            units=dict(data.get("units", {})),
        )
    except (KeyError, TypeError, IndexError) as error:
        raise ValueError(f"score card: malformed ({error!r})") from error


def write_scorecard(card: Scorecard, path: str | Path) -> Path:
    """Write the JSON form atomically."""
    from fno_forecast.output import write_text_atomic

    return write_text_atomic(path, card.to_json())
