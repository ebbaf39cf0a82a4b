"""`fno-forecast info PATH [--json]`: show a model bundle's metadata without loading its weights."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="model bundle folder (OUT/model)")
    parser.add_argument("--json", action="store_true", help="print model.json as JSON")


def run(args: argparse.Namespace) -> int:
    import json

    from fno_forecast.bundle import read_metadata
    from fno_forecast.recent_anomaly import RecentAnomalyCorrection
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
                f"clim corr  {recent.window_days[best]:g}-day mean anomaly x "
                f"{', '.join(f'{c:.2f}' for c in recent.coefficients[best])} (held-out RMSE "
                f"{recent.heldout_rmse[best]:.3f} vs climatology {recent.climatology_rmse:.3f}, {recent.held_out})"
            )
    calibration = metadata.get("lead_calibration")
    if calibration:
        factors = calibration["factors"]
        prior = calibration.get("prior_weights") or [[0.0] * len(row) for row in factors]
        picks = [k for k in (1, 4, 12, 20, 40) if k <= len(factors)]

        def weights(k: int) -> str:
            pairs = zip(factors[k - 1], prior[k - 1], strict=True)
            return ", ".join(f"a {a:.2f} b {b:.2f}" for a, b in pairs)

        where = "held out" if calibration.get("held_out") else "in sample"
        lines.append(
            "lead calib "
            + " | ".join(f"step {k} {weights(k)}" for k in picks)
            + f" (network x a + prior x b; {calibration['inits']} inits of {calibration['fitted_on']}, {where})"
        )
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
