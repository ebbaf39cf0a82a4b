"""`fno-forecast forecast`: roll a model out from an initial state and write CF NetCDF or Zarr.

Without `--model` the bundled default model runs; without `--data` it starts from the NCEP sample that
ships with `hvsampledata` (20 steps, 2014-02-24 .. 2014-02-28), so the command works offline.
"""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="model bundle folder (default: the bundled default model)")
    parser.add_argument(
        "--data", nargs="+", help="initial-state files or globs (default: the bundled NCEP sample)"
    )
    parser.add_argument(
        "--init-time", help="ISO time, or START/END for every time in it (default: the latest complete time)"
    )
    parser.add_argument("--lead-hours", type=float, required=True, help="forecast length in hours")
    parser.add_argument("--out", required=True, help="output FILE.nc (CF NetCDF) or FILE.zarr")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")


def run(args: argparse.Namespace) -> int:
    from fno_forecast.bundle import default_bundle_path, load_bundle
    from fno_forecast.forecast import forecast
    from fno_forecast.output import output_format, write_forecast

    output_format(args.out)  # a bad suffix fails before any work
    bundle = load_bundle(args.model or default_bundle_path())
    if args.data:
        from fno_forecast.data.source import open_source

        initial_state = open_source(args.data)
        initial_state.attrs["source"] = ", ".join(args.data)
    else:
        from fno_forecast.initial_states import default_initial_states

        initial_state = default_initial_states()

    def progress(step: int, n_steps: int, lead: float) -> None:
        if not args.quiet:
            print(f"step {step}/{n_steps} (lead {lead:g} h)", file=sys.stderr)

    result = forecast(bundle, initial_state, args.lead_hours, init_times=args.init_time, on_step=progress)
    path = write_forecast(result, args.out)
    inits = result["init_time"].values.ravel()
    print(
        f"wrote {path}: {len(inits)} init(s) from {str(inits[0])[:16]}, "
        f"{result.sizes['lead_time']} leads to {args.lead_hours:g} h, variables {', '.join(map(str, result.data_vars))}"
    )
    return 0
