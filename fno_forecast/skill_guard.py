"""The skill guard: score a freshly trained bundle against persistence and climatology before anyone uses it.

When training ends, the bundle is scored on its validation period with the evaluation code (`evaluate`'s
`evaluate_model`: the bundle's corrections included, baselines on the same inits). Where the model's RMSE
is above the better of the two baselines at any validation lead for any channel, the verdict says so and
lists those rows; it goes into the bundle's skill card (`skill_card.verdict` in `model.json`), so
`info`, `evaluate`, `/v1/models/{id}` and the dashboard show it. Data after the validation period is cut
off before scoring, so no verifying time reaches into a later (test) period. `fno-forecast train` runs it
when training ends (the training package itself never imports evaluation).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from fno_forecast.data.timeaxis import calendar_of, parse_period, period_hours, times_to_hours

SKILFUL = "skilful"
WORSE = "worse than a baseline"


def verdict_from_card(card: dict[str, Any]) -> dict[str, Any]:
    """`{"status", "losses", "period"}` from a skill card dict: a loss is an RMSE row above the better baseline."""
    losses = []
    for row in card.get("scores", []):
        if row.get("metric") != "rmse" or row.get("model") is None:
            continue
        baselines = [row[k] for k in ("persistence", "climatology") if row.get(k) is not None]
        if baselines and row["model"] > min(baselines):
            losses.append(
                {
                    "variable": row["variable"],
                    "lead_hours": row["lead_hours"],
                    "model": row["model"],
                    "persistence": row.get("persistence"),
                    "climatology": row.get("climatology"),
                }
            )
    return {"status": WORSE if losses else SKILFUL, "losses": losses, "period": list(card.get("period", []))}


def format_verdict(verdict: dict[str, Any]) -> str:
    """One line when skilful; a warning table of the losing rows otherwise."""
    period = "/".join(verdict.get("period", []))
    if verdict["status"] == SKILFUL:
        return f"verdict: skilful (beats persistence and climatology at every validation lead, {period})"
    lines = [
        f"WARNING: the model loses to a baseline on the validation period {period}:",
        f"  {'variable':<12} {'lead h':>8} {'model':>10} {'persistence':>12} {'climatology':>12}",
    ]
    for row in verdict["losses"]:
        p, c = row["persistence"], row["climatology"]
        lines.append(
            f"  {row['variable']:<12} {row['lead_hours']:>8g} {row['model']:>10.3f} "
            f"{'-' if p is None else f'{p:.3f}':>12} {'-' if c is None else f'{c:.3f}':>12}"
        )
    lines.append("  use persistence or climatology there, or train longer / on more data.")
    return "\n".join(lines)


def cut_after(array: xr.DataArray, period: str) -> xr.DataArray:
    """The part of `array` up to the end of `period` (its verifying times cannot reach beyond it)."""
    times = array["time"].values
    _, end = period_hours(parse_period(period), calendar=calendar_of(times))
    upto = np.flatnonzero(times_to_hours(times) <= end)
    return array.isel(time=slice(0, int(upto[-1]) + 1))


def guard_bundle(bundle_path: str | Path, data_paths: list[str] | None = None) -> dict[str, Any]:
    """Score a trained bundle on its validation period (data from `data_paths`, default: the paths it was
    trained on) at its validation leads, store card and verdict as its skill card; returns the verdict."""
    from fno_forecast.bundle import load_bundle
    from fno_forecast.bundle_metadata import update_skill_card
    from fno_forecast.evaluation.scoring import evaluate_model, open_for_bundle

    bundle = load_bundle(bundle_path)
    training = bundle.metadata.get("training") or {}
    period = training["val_period"]
    leads = tuple(float(h) for h in training["config"]["val_leads_hours"])
    array = open_for_bundle(bundle, data_paths or training["data"]["paths"])
    result = evaluate_model(
        bundle,
        cut_after(array, period),
        period=period,
        leads=leads,
        # the batch the training validated with, which its memory budget chose (`training.memory`)
        batch_size=int(training["config"]["val_batch_size"]),
        # the inits the training validation scored (`val_init_stride`, which the defaults raise on big
        # grids): every init of a 121 x 240 validation season would take hours on a CPU
        init_stride=int(training["config"].get("val_init_stride", 1)),
        model_label=str(bundle_path),
        data_label="validation period",
        explain=False,
        bootstrap=None,
    )
    card = result.card.to_dict()
    verdict = verdict_from_card(card)
    update_skill_card(bundle_path, {**card, "verdict": verdict})
    return verdict
