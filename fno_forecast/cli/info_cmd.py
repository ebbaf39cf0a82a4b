"""`fno-forecast info PATH [--json]`: show a model bundle's metadata without loading its weights."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fno_forecast.lead_calibration import LeadCalibration


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="model bundle folder (OUT/model)")
    parser.add_argument("--json", action="store_true", help="print model.json as JSON")


def run(args: argparse.Namespace) -> int:
    import json

    from fno_forecast.bundle_metadata import read_metadata
    from fno_forecast.lead_calibration import LeadCalibration
    from fno_forecast.recent_anomaly import RecentAnomalyCorrection, window_text
    from fno_forecast.skill_guard import format_verdict

    metadata = read_metadata(args.path)
    if args.json:
        print(json.dumps(metadata, indent=2))
        return 0
    schema = metadata["schema"]
    grid = schema["grid"]
    training = metadata.get("training") or {}
    lines = [
        f"model      {metadata['model']['name']} {json.dumps(metadata['model']['config'])}",
        f"channels   {', '.join(c['name'] for c in schema['channels'])}",
        f"grid       {len(grid['lat'])} x {len(grid['lon'])} (lat {grid['lat'][0]:g}..{grid['lat'][-1]:g}, "
        f"lon {grid['lon'][0]:g}..{grid['lon'][-1]:g})",
        f"step       {schema['step_hours']:g} h",
        f"stepper    {json.dumps(metadata['stepper'])}",
        f"train      {training.get('train_period', '?')}",
        f"validate   {training.get('val_period', '?')}",
        f"version    {metadata.get('package_version', '?')}",
    ]
    val = training.get("val_rmse")
    if val:
        first = next(iter(next(iter(val.values()))))
        lines.append(
            f"val RMSE   ({first}) " + " | ".join(f"{lead}h {v[first]:.3f}" for lead, v in val.items())
        )
    if metadata.get("recent_anomaly"):
        recent = RecentAnomalyCorrection.from_dict(metadata["recent_anomaly"])
        ranked = recent.ranked_windows()
        if not ranked:
            lines.append(f"clim corr  none: no window beat the climatology on {recent.held_out}")
        else:
            best = ranked[0]
            lines.append(
                f"clim corr  {window_text(recent.window_days[best])} mean anomaly x "
                f"{', '.join(f'{c:.2f}' for c in recent.coefficients[best])} (held-out RMSE "
                f"{recent.heldout_rmse[best]:.3f} vs climatology {recent.climatology_rmse:.3f}, {recent.held_out})"
            )
    calibration = metadata.get("lead_calibration")
    if calibration:
        lines.append(_calibration_line(LeadCalibration.from_dict(calibration)))
    for choice in training.get("choices", []):
        lines.append(f"derived    {choice['key']} = {json.dumps(choice['value'])} ({choice['why']})")
    for name, decision in (training.get("corrections") or {}).items():
        lines.append(f"{'kept' if decision['kept'] else 'dropped':<10} {name}: {decision['why']}")
    card = metadata.get("skill_card")
    if card is None:
        lines.append("skill card none yet")
    else:
        lines.append(f"skill card {card.get('inits', '?')} inits of {'/'.join(card.get('period', []))}")
    verdict = (card or {}).get("verdict")
    if verdict:
        lines.append(format_verdict(verdict))
    print("\n".join(lines))
    return 0


def _calibration_line(calibration: LeadCalibration) -> str:
    """The lead calibration's weights at a few lead steps, what each lead/channel picked, and where."""
    tables = {"a": calibration.factors}
    for letter, rows in (
        ("b", calibration.prior_weights),
        ("c", calibration.persistence_weights),
        ("d", calibration.offset_weights),
        ("e", calibration.linear_weights),
    ):
        if any(x != 0.0 for row in rows for x in row):
            tables[letter] = rows
    picks = [k for k in (1, 4, 12, 20, 40) if k <= len(calibration.factors)]

    def weights(k: int) -> str:
        return ", ".join(
            " ".join(f"{letter} {rows[k - 1][c]:.2f}" for letter, rows in tables.items())
            for c in range(calibration.n_channels)
        )

    where = "held out" if calibration.held_out else "in sample"
    picked = ", ".join(f"{name} {n}" for name, n in calibration.picked) or "not recorded"
    return (
        "lead calib "
        + " | ".join(f"step {k} {weights(k)}" for k in picks)
        + " (network x a + prior x b + persistence x c + offset x d + linear AR x e; lead/channel pairs: "
        + f"{picked}; {calibration.inits} inits of {calibration.fitted_on}, {where})"
    )
