"""`fno-forecast evaluate`: score a model against its baselines over a period, with 95% intervals.

Every init time in the period whose verifying times are in the data (inside the period too, with
`--verify-inside`) is scored at each lead: latitude-weighted RMSE, ACC against the bundle's climatology
and mean bias, for the model and, on the same inits, persistence, climatology, the bundle's prior
without the network (with and without each correction) and a linear autoregression on principal
components fitted on the training period. Every score carries a moving-block bootstrap interval and
every comparison with the model says whether the difference is significant. `--folds` adds the
scores of each rolling-origin fold period to the card.
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
        "--verify-inside",
        action="store_true",
        help="score a lead of an init only when it verifies inside --period (long leads get fewer inits)",
    )
    parser.add_argument(
        "--history-days",
        type=float,
        help="limit the recent-anomaly correction to this much history before each init, as a forecast "
        "served from that much data (default: all the data before it)",
    )
    parser.add_argument(
        "--folds",
        help="also score these periods, comma separated START/END (rolling-origin folds; each verifies "
        "inside itself and its linear baseline is fitted before it)",
    )
    parser.add_argument(
        "--init-stride",
        type=int,
        default=1,
        help="score every n-th init of the period (default 1: all; neighbouring inits share their weather)",
    )
    parser.add_argument(
        "--no-explain",
        action="store_true",
        help="skip the prior and linear baselines (persistence and climatology only)",
    )
    parser.add_argument(
        "--resamples", type=int, default=1000, help="bootstrap resamples for the intervals (default 1000)"
    )
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    parser.add_argument(
        "--no-lead-calibration",
        action="store_true",
        help="score without the bundle's per-lead calibration factors (an ablation)",
    )


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from fno_forecast.bundle import default_bundle_path, load_bundle
    from fno_forecast.bundle_metadata import update_skill_card
    from fno_forecast.data.timeaxis import lead_steps_for, parse_period
    from fno_forecast.errors import ConfigError
    from fno_forecast.evaluation.bootstrap import BootstrapConfig
    from fno_forecast.evaluation.folds import parse_folds
    from fno_forecast.evaluation.scorecard import write_scorecard
    from fno_forecast.evaluation.scoretable import format_card
    from fno_forecast.evaluation.scoring import evaluate_paths, parse_leads

    parse_period(args.period)  # a malformed period fails before any work
    folds = parse_folds(args.folds) if args.folds else ()
    try:
        bootstrap = BootstrapConfig(resamples=args.resamples, seed=args.seed)
    except ValueError as error:
        raise ConfigError(f"--resamples: {error}") from None
    given = parse_leads(args.leads) if args.leads is not None else ()
    model_path = Path(args.model) if args.model else default_bundle_path()
    bundle = load_bundle(model_path)
    step = bundle.schema.step_hours
    leads = given or tuple(n * step for n in lead_steps_for((), step_hours=step))
    result = evaluate_paths(
        bundle,
        args.data,
        period=args.period,
        folds=folds,
        leads=leads,
        batch_size=args.batch_size,
        map_lead=args.map_lead,
        model_label=args.model or "bundled default model",
        on_progress=lambda done, total: print(f"inits {done}/{total}", file=sys.stderr),
        recent_anomaly=not args.no_recent_anomaly,
        lead_calibration=not args.no_lead_calibration,
        verify_inside=args.verify_inside,
        history_days=args.history_days,
        explain=not args.no_explain,
        bootstrap=bootstrap,
        init_stride=args.init_stride,
    )
    print(format_card(result.card), end="")
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
