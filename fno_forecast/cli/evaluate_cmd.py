"""`fno-forecast evaluate`: score a model against persistence and climatology over a period."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="model bundle folder (default: the bundled default model)")
    parser.add_argument("--data", nargs="+", required=True, help="verification data files")
    parser.add_argument("--period", required=True, help="init period START/END (both days included)")
    parser.add_argument("--leads", default="6,24,72,120,240", help="lead hours, comma separated")
    parser.add_argument("--json", help="write the scores as JSON to this file")
    parser.add_argument("--plots", help="write PNG plots into this folder")


def run(args: argparse.Namespace) -> int:
    from fno_forecast.errors import ForecastError

    raise ForecastError("evaluate: not available yet in this build")
