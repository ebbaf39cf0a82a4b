"""`fno-forecast evaluate`: score a model against persistence and climatology over a period.

Every init time in the period whose verifying times are in the data is scored at each lead:
latitude-weighted RMSE, ACC against the bundle's climatology and mean bias, for the model and for the
persistence and climatology baselines on the same inits.
"""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="model bundle folder (default: the bundled default model)")
    parser.add_argument("--data", nargs="+", required=True, help="verification data files or globs")
    parser.add_argument("--period", required=True, help="init period START/END (both days included)")
    parser.add_argument(
        "--leads",
        default=None,
        help="lead hours, comma separated (default: 6,24,72,120,240 rounded up to whole model steps)",
    )
    parser.add_argument("--json", help="write the scores as JSON to this file")
    parser.add_argument("--plots", help="write PNG plots (skill curves, a map panel) into this folder")
    parser.add_argument(
        "--map-lead", type=float, help="lead hours of the map panel (default: the middle lead)"
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=32,
        help="inits rolled out together (default 32: larger batches spend their time in page faults on CPU)",
    )
    parser.add_argument(
        "--write-skill-card", action="store_true", help="store the scores as the bundle's skill card"
    )
    parser.add_argument(
        "--no-recent-anomaly",
        action="store_true",
        help="score without the bundle's recent-anomaly correction of the climatology (an ablation)",
    )
    parser.add_argument(
        "--no-lead-calibration",
        action="store_true",
        help="score without the bundle's per-lead calibration factors (an ablation)",
    )


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from fno_forecast.bundle import default_bundle_path, load_bundle, update_skill_card
    from fno_forecast.data.timeaxis import lead_steps_for, parse_period
    from fno_forecast.evaluation.scorecard import write_scorecard
    from fno_forecast.evaluation.scoring import evaluate_model, open_for_bundle, parse_leads

    parse_period(args.period)  # a malformed period fails before any work
    given = parse_leads(args.leads) if args.leads is not None else ()
    model_path = Path(args.model) if args.model else default_bundle_path()
    bundle = load_bundle(model_path)
    step = bundle.schema.step_hours
    leads = given or tuple(n * step for n in lead_steps_for((), step_hours=step))
    array = open_for_bundle(bundle, args.data)
    result = evaluate_model(
        bundle,
        array,
        period=args.period,
        leads=leads,
        batch_size=args.batch_size,
        map_lead=args.map_lead,
        model_label=args.model or "bundled default model",
        data_label=", ".join(args.data),
        on_progress=lambda done, total: print(f"inits {done}/{total}", file=sys.stderr),
        recent_anomaly=not args.no_recent_anomaly,
        lead_calibration=not args.no_lead_calibration,
    )
    print(result.card.format_table(), end="")
    from fno_forecast.skill_guard import format_verdict, verdict_from_card

    print(format_verdict(verdict_from_card(result.card.to_dict())))
    if args.json:
        print(f"wrote {write_scorecard(result.card, args.json)}")
    if args.plots:
        from fno_forecast.evaluation.plots import plot_map_panel, plot_skill_curves

        written = plot_skill_curves(result.card, args.plots)
        fields = result.map_fields
        if fields is not None:
            for index, channel in enumerate(bundle.schema.channels):
                written.append(
                    plot_map_panel(
                        truth=fields.truth[index],
                        forecast=fields.forecast[index],
                        lat=fields.lat,
                        lon=fields.lon,
                        variable=channel.name,
                        units=channel.units,
                        init_time=fields.init_time,
                        lead_hours=fields.lead_hours,
                        path=Path(args.plots) / f"map_{channel.name}_{fields.lead_hours:g}h.png",
                    )
                )
        print(f"wrote {len(written)} plots to {args.plots}")
    if args.write_skill_card:
        update_skill_card(model_path, result.card.to_dict())
        print(f"stored the skill card in {model_path}")
    return 0
