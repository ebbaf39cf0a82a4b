"""`fno-forecast inspect PATH... [--json]`: the detected schema of gridded data files."""

from __future__ import annotations

import argparse
import json
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="NetCDF, Zarr or GRIB files, or a glob")
    parser.add_argument("--json", action="store_true", help="print the schema as JSON")
    parser.add_argument("--variables", nargs="+", metavar="VAR", help="keep only these variables")
    parser.add_argument(
        "--levels", nargs="+", type=float, metavar="LEVEL", help="keep only these levels (hPa)"
    )
    parser.add_argument("--member", type=int, help="ensemble member number (default: the first)")
    parser.add_argument(
        "--no-missing-count",
        action="store_true",
        help="skip counting missing values (which reads all the data)",
    )


def describe(args: argparse.Namespace) -> dict[str, Any]:
    """The `inspect --json` document for the paths and selections in `args`."""
    from fno_forecast.data.channels import open_channels
    from fno_forecast.data.checks import count_missing

    channels = open_channels(
        args.paths,
        variables=args.variables,
        levels=args.levels,
        member=args.member,
        require_regular=False,
    )
    missing = None if args.no_missing_count else count_missing(channels.array)
    return {
        "paths": list(channels.paths),
        "format": channels.source_format,
        "time": channels.time.to_dict(),
        "grid": channels.schema.grid.summary(),
        "channels": [c.to_dict() for c in channels.schema.channels],
        "member": channels.schema.member,
        "missing_values": missing,
        "notes": list(channels.schema.notes),
    }


def _table(doc: dict[str, Any]) -> str:
    time, grid = doc["time"], doc["grid"]
    lines = [
        f"format   {doc['format']}  ({len(doc['paths'])} file(s))",
        f"time     {time['start']} .. {time['end']}, {time['steps']} steps every "
        + (f"{time['step_months']} month(s)" if time["step_months"] else f"{time['step_hours']:g} h")
        + f", {len(time['gaps'])} gap(s)"
        + (f", IRREGULAR after {', '.join(time['irregular'][:3])}" if time["irregular"] else ""),
        f"grid     {grid['nlat']} x {grid['nlon']}, {grid['resolution_deg']:g} deg, "
        f"lat {grid['lat_min']:g}..{grid['lat_max']:g}, lon {grid['lon_min']:g}..{grid['lon_max']:g}"
        + (", global" if grid["global"] else ", regional"),
    ]
    for gap in time["gaps"][:5]:
        lines.append(
            f"  gap    {gap['missing_steps']} step(s) missing between {gap['after']} and {gap['before']}"
        )
    if doc["missing_values"] is not None:
        lines.append(f"missing  {doc['missing_values']['total']} value(s)")
    lines.append(f"{'channel':<10} {'variable':<10} {'level':>7}  {'units':<12} long name")
    for c in doc["channels"]:
        level = "" if c["level"] is None else f"{c['level']:g}"
        lines.append(f"{c['name']:<10} {c['variable']:<10} {level:>7}  {c['units']:<12} {c['long_name']}")
    lines.extend(f"note     {note}" for note in doc["notes"])
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    doc = describe(args)
    print(json.dumps(doc, indent=2) if args.json else _table(doc))
    return 0
