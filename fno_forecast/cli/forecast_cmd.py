"""`fno-forecast forecast`: roll a model out from an initial state and write CF NetCDF or Zarr."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="model bundle folder (default: the bundled default model)")
    parser.add_argument("--data", nargs="+", help="initial-state files (default: the bundled NCEP sample)")
    parser.add_argument("--init-time", help="ISO time or START/END (default: the latest complete time)")
    parser.add_argument("--lead-hours", type=float, required=True, help="forecast length in hours")
    parser.add_argument("--out", required=True, help="output FILE.nc or FILE.zarr")


def run(args: argparse.Namespace) -> int:
    from fno_forecast.errors import ForecastError

    raise ForecastError("forecast: not available yet in this build")
