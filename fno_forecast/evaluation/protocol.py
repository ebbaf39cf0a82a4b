"""The protocol entry of a score card, and the card of a finished run with its intervals and protocol.

The protocol says how the scores were made, so a reader can judge and repeat them. It records the period and whether every verifying time lies inside it, the inits scored at each lead,
what the model was scored with (corrections, history) against what a served forecast of the bundle uses,
which prior variant is the network's own, how the linear baseline was fitted, and how the intervals
were drawn (the decorrelation time and block length per lead).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from fno_forecast.bundle import Bundle
from fno_forecast.evaluation.bootstrap import BootstrapConfig
from fno_forecast.evaluation.intervals import LeadIntervals, lead_intervals
from fno_forecast.evaluation.metrics import SkillAccumulator
from fno_forecast.evaluation.prior import prior_name
from fno_forecast.evaluation.runner import Plan
from fno_forecast.evaluation.scorecard import Scorecard
from fno_forecast.linear_ar import LinearAR
from fno_forecast.models.linear_spectral import LinearSpectral


def _by_lead(leads: Sequence[float], values: Sequence[Any]) -> dict[str, Any]:
    return {f"{lead:g}": value for lead, value in zip(leads, values, strict=True)}


def served_record(bundle: Bundle) -> dict[str, Any]:
    """What a forecast served from this bundle uses: its corrections and the history they need."""
    record: dict[str, Any] = {
        "recent_anomaly": bundle.recent_anomaly is not None,
        "lead_calibration": bundle.lead_calibration is not None,
        "history": "the steps before the init in the served data; the recent-anomaly correction uses the "
        "best window (held out in training) that they cover",
    }
    correction = bundle.recent_anomaly
    if correction is not None:
        # a forecast uses the first of these that its history covers (5 days of states: the 5-day window)
        record["windows_best_first_days"] = [correction.window_days[i] for i in correction.ranked_windows()]
    return record


def bootstrap_record(
    config: BootstrapConfig,
    *,
    leads: Sequence[float],
    intervals: Mapping[float, LeadIntervals],
    step_hours: float,
) -> dict[str, Any]:
    """The bootstrap settings and, per lead, the decorrelation times (inits) that set the block lengths.

    `decorrelation_inits[lead][system]`: of the system's squared errors (its score intervals);
    `difference_decorrelation_inits[lead][system]`: of the model's minus the system's (the comparison).
    A block is the decorrelation time rounded up.
    """

    def rounded(values: Mapping[str, float]) -> dict[str, float]:
        return {k: round(v, 2) for k, v in values.items()}

    return {
        "method": "moving-block bootstrap over inits in time order; comparisons paired",
        "block_rule": "block length = decorrelation time (integrated autocorrelation time) rounded up",
        "confidence": config.confidence,
        "resamples": config.resamples,
        "seed": config.seed,
        "init_spacing_hours": step_hours,
        "decorrelation_inits": _by_lead(leads, [rounded(intervals[lead].decorrelation) for lead in leads]),
        "difference_decorrelation_inits": _by_lead(
            leads, [rounded(intervals[lead].difference_decorrelation) for lead in leads]
        ),
    }


def protocol_record(
    *,
    bundle: Bundle,
    period: tuple[str, str],
    verify_inside: bool,
    leads: Sequence[float],
    counts: Sequence[int],
    scored_with: Mapping[str, Any],
    windows_used: Counter[float],
    own_prior: str | None,
    linear: LinearAR | None,
    spectral: LinearSpectral | None,
    bootstrap: Mapping[str, Any] | None,
    init_stride: int = 1,
) -> dict[str, Any]:
    """The whole protocol entry (see the module docstring)."""
    notes = []
    training = bundle.metadata.get("training") or {}
    trained = training.get("train_period")
    if trained:
        notes.append(f"the bundle was trained on {trained}")
    return {
        "period": list(period),
        "init_selection": (
            "every init" if init_stride == 1 else f"one init in {init_stride}, in time order, of those"
        )
        + " inside the period (with its previous step when the model uses history)",
        "init_stride": init_stride,
        "verify_inside": bool(verify_inside),
        "inits_per_lead": _by_lead(leads, list(counts)),
        "scored_with": {
            **dict(scored_with),
            "recent_anomaly_days_used": {f"{d:g}": n for d, n in sorted(windows_used.items())},
        },
        "served": served_record(bundle),
        "own_prior": own_prior,
        "linear_ar": None
        if linear is None
        else {"fitted_on": linear.fitted_on, "components": linear.n_components, "pairs": linear.pairs},
        "linear_spectral": None
        if spectral is None
        else {
            "fitted_on": spectral.fitted_on,
            "degrees": spectral.degrees,
            "order": spectral.order,
            "ridge": spectral.ridge,
            "pairs": spectral.pairs,
            "spectral_radius": round(spectral.spectral_radius, 6),
        },
        "bootstrap": None if bootstrap is None else dict(bootstrap),
        "notes": notes,
    }


def build_card(
    plan: Plan,
    accumulators: dict[str, SkillAccumulator],
    *,
    period: str,
    verify_inside: bool,
    scored_with: dict[str, Any],
    windows_used: Counter[float],
    bootstrap: BootstrapConfig | None,
    labels: tuple[str, str],
) -> Scorecard:
    """The score card of a finished run, with intervals and the protocol."""
    intervals = None
    if bootstrap is not None:
        intervals = {
            lead: lead_intervals(
                {name: acc.per_init(lead) for name, acc in accumulators.items()},
                lead_index=j,
                config=bootstrap,
                phase=np.remainder(plan.hours[plan.selection.inits[plan.selection.scored[:, j]]], 24.0),
            )
            for j, lead in enumerate(plan.leads)
        }
    own = prior_name(
        recent_anomaly=scored_with["recent_anomaly"], lead_calibration=scored_with["lead_calibration"]
    )
    bounds = tuple(period.split("/", 1))
    protocol = protocol_record(
        bundle=plan.bundle,
        period=bounds,
        verify_inside=verify_inside,
        leads=plan.leads,
        counts=plan.selection.counts(),
        scored_with=scored_with,
        windows_used=windows_used,
        own_prior=own if own in accumulators else None,
        linear=plan.linear,
        spectral=plan.spectral,
        bootstrap=None
        if intervals is None
        else bootstrap_record(
            bootstrap,
            leads=plan.leads,
            intervals=intervals,
            step_hours=plan.bundle.step_hours * plan.init_stride,
        ),
        init_stride=plan.init_stride,
    )
    return Scorecard.from_results(
        model=labels[0],
        data=labels[1],
        period=bounds,
        inits=int(plan.selection.inits.size),
        channels=[str(n) for n in plan.array["channel"].values],
        results={name: acc.result() for name, acc in accumulators.items()},
        units={c.name: c.units for c in plan.bundle.schema.channels},
        intervals=intervals,
        protocol=protocol,
    )
