"""The plain-text form of a score card: protocol lines, then one block per variable and metric.

Each block lists, lead by lead, every system's score with its 95% interval and the model's difference
from it (model minus system, with its paired interval; `*` marks a significant one). RMSE blocks end with
the network's gain over its own prior (the prior scored with the model's corrections), lead by lead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fno_forecast.evaluation.baselines import system_label
from fno_forecast.evaluation.metrics import METRICS
from fno_forecast.evaluation.scorecard import Scorecard, ScoreRow

METRIC_LABELS: dict[str, str] = {"rmse": "RMSE", "acc": "ACC", "bias": "bias"}


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _interval(pair: tuple[float, float] | None) -> str:
    return "" if pair is None else f"[{pair[0]:.3f}, {pair[1]:.3f}]"


def _leads_text(values: Mapping[str, Any]) -> str:
    return "/".join(str(v) for v in values.values()) + " at " + "/".join(values) + " h"


def protocol_lines(protocol: Mapping[str, Any]) -> list[str]:
    """Human-readable lines for the protocol entry of a card (nothing for cards without one)."""
    lines: list[str] = []
    if "inits_per_lead" in protocol:
        inside = "inside the period" if protocol.get("verify_inside") else "anywhere in the data"
        lines.append(f"verifying times {inside}; inits per lead {_leads_text(protocol['inits_per_lead'])}")
    scored = protocol.get("scored_with")
    if scored:
        history = scored.get("history_days")
        lines.append(
            "model scored with: "
            + f"recent-anomaly correction {'on' if scored.get('recent_anomaly') else 'off'}"
            + f" (windows used, days: {scored.get('recent_anomaly_days_used', {})}), "
            + f"lead calibration {'on' if scored.get('lead_calibration') else 'off'}, "
            + ("all history before each init" if history is None else f"{history:g} days of history")
        )
    boot = protocol.get("bootstrap")
    if boot:
        model_tau = {lead: f"{v.get('model', 0):.1f}" for lead, v in boot["decorrelation_inits"].items()}
        lines.append(
            f"{100 * boot['confidence']:g}% intervals: moving-block bootstrap over inits ({boot['resamples']} "
            f"resamples, seed {boot['seed']}), blocks of one decorrelation time (the model's errors: "
            f"{_leads_text(model_tau)}, in inits; every series' in the JSON)"
        )
    for note in protocol.get("notes", ()):
        lines.append(str(note))
    return lines


def _block(card: Scorecard, variable: str, metric: str) -> list[str]:
    units = card.units.get(variable, "")
    label = METRIC_LABELS[metric] + (f" ({units})" if metric != "acc" and units else "")
    lines = [
        "",
        f"{variable} {label}",
        f"{'lead h':>7}  {'system':<26} {'score':>8} {'95% interval':<18} {'model - it':>10} {'95% interval':<18}",
    ]
    for row in card.rows:
        if row.variable != variable or row.metric != metric:
            continue
        for system in card.systems:
            compared = row.versus.get(system)
            diff, diff_ci = "", ""
            if compared is not None:
                star = " *" if compared["significant"] else ""
                diff, diff_ci = _cell(compared["difference"]), _interval(compared["ci95"]) + star
            lines.append(
                f"{row.lead_hours:>7g}  {system_label(system):<26} {_cell(row.value(system)):>8} "
                f"{_interval(row.ci95.get(system)):<18} {diff:>10} {diff_ci}".rstrip()
            )
    return lines


def _gain_lines(card: Scorecard, variable: str) -> list[str]:
    prior = card.protocol.get("own_prior")
    rows: list[ScoreRow] = [r for r in card.rows if r.variable == variable and r.metric == "rmse"]
    if not prior or not rows or rows[0].value(prior) is None:
        return []
    lines = [
        "",
        f"{variable} network gain over its own prior ({system_label(prior)}): prior RMSE - model RMSE",
    ]
    for row in rows:
        compared = row.versus.get(prior)
        if compared is None:
            continue
        low, high = compared["ci95"]
        star = " *" if compared["significant"] else ""
        lines.append(f"{row.lead_hours:>7g}  {-compared['difference']:>8.3f} [{-high:.3f}, {-low:.3f}]{star}")
    return lines


def format_card(card: Scorecard) -> str:
    """The whole table; `*` marks a difference whose 95% interval excludes zero."""
    lines = [
        f"model {card.model}",
        f"data {card.data}",
        f"period {card.period[0]} .. {card.period[1]}, {card.inits} inits",
        *protocol_lines(card.protocol),
    ]
    for variable in card.variables:
        for metric in METRICS:
            lines += _block(card, variable, metric)
        lines += _gain_lines(card, variable)
    for fold in card.folds:
        lines += ["", f"fold {fold.period[0]} .. {fold.period[1]}", *format_card(fold).splitlines()[3:]]
    return "\n".join(lines) + "\n"
