"""`fno-forecast train`: train a neural operator on gridded data and write OUT/model.

With no config, everything is automatic: all (time, lat, lon[, level]) variables become channels, the last
15% of the time range validates, and every key not set in the config or on the command line is derived from
the data (`fno_forecast.training.defaults`): one block at the start says what was chosen and why. Under torchrun
(`torchrun --nproc-per-node N -m fno_forecast train ...`) the run is data-parallel and rank 0 writes.
"""

from __future__ import annotations

import argparse
from typing import Any

FLAG_KEYS = ("model", "train_period", "val_period", "batch_size", "lr", "seed", "device")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="data file(s): NetCDF, Zarr, GRIB, or a glob")
    parser.add_argument("--out", required=True, help="output folder (checkpoint, metrics.jsonl, model/)")
    parser.add_argument("--config", help="flat TOML config file (see configs/)")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key (repeatable)"
    )
    parser.add_argument(
        "--model", help="auto (default: sfno on a global grid with both poles, else fno), fno or sfno"
    )
    parser.add_argument("--train-period", help="training period START/END (both ends included)")
    parser.add_argument("--val-period", help="validation period START/END (both ends included)")
    parser.add_argument("--batch-size", type=int, help="batch size per process")
    parser.add_argument("--lr", type=float, help="peak learning rate")
    parser.add_argument("--seed", type=int, help="random seed")
    parser.add_argument(
        "--device", choices=["auto", "cpu", "cuda"], help="device (auto: cuda when available)"
    )
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    parser.add_argument(
        "--max-minutes",
        type=float,
        help="time budget from the end of the data setup: training stops early enough for the final "
        "validation, the lead calibration and the skill guard to fit in it, and writes the bundle",
    )
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or per-epoch lines")


def overrides_from(args: argparse.Namespace) -> dict[str, Any]:
    from fno_forecast.training.config import parse_override

    overrides = dict(parse_override(text) for text in args.set)
    for key in FLAG_KEYS:
        value = getattr(args, key)
        if value is not None:
            overrides[key] = value
    return overrides


def run(args: argparse.Namespace) -> int:
    import os
    from pathlib import Path

    from fno_forecast.errors import ConfigError
    from fno_forecast.training.config import load_config_and_keys

    config, explicit = load_config_and_keys(args.config, overrides=overrides_from(args))
    if args.print_config:
        print(config.to_toml(), end="")
        return 0
    if args.max_minutes is not None and args.max_minutes <= 0:
        raise ConfigError(f"--max-minutes: expected a positive number, got {args.max_minutes}")
    from fno_forecast.training.loop import train

    result = train(
        config,
        data_path=args.data,
        out_dir=Path(args.out),
        resume=args.resume,
        max_minutes=args.max_minutes if args.max_minutes is not None else (config.max_minutes or None),
        quiet=args.quiet,
        explicit=explicit,
    )
    if not args.quiet and result.best is not None:
        print(f"model written to {result.bundle_path}; best validation RMSE: {result.best.summary()}")
    if int(os.environ.get("RANK", "0")) == 0:
        from fno_forecast.skill_guard import SKILFUL, format_verdict, guard_bundle

        verdict = guard_bundle(result.bundle_path, [args.data])
        if not args.quiet or verdict["status"] != SKILFUL:
            print(format_verdict(verdict), flush=True)
    return 0
