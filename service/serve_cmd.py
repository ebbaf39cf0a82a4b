"""`fno-forecast serve`: serve forecasts over HTTP.

The command belongs to the service; the library's CLI finds it through the `fno_forecast.commands`
entry point (pyproject.toml) and never imports `service` by name. Like the library's command modules it
has `HELP`, `add_arguments(parser)` and `run(args) -> int`, and imports uvicorn and the app inside `run`.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

HELP = "Serve forecasts over HTTP."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        dest="models",
        action="append",
        type=Path,
        default=None,
        metavar="PATH",
        help="a model bundle directory; repeat to serve several (default: the bundled model)",
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        metavar="PATH",
        help="initial states: a NetCDF, Zarr or GRIB file, or a folder or glob that is watched: each file "
        "that appears there (written atomically) is checked and its new times become runs "
        "(default: the bundled 20 NCEP steps)",
    )
    parser.add_argument(
        "--replay",
        default=None,
        metavar="PATH",
        help="demo: feed this file's analyses one time step at a time, as if arriving ('bundled' for the "
        "NCEP sample); runs are marked as replayed, never as live",
    )
    parser.add_argument(
        "--replay-every",
        type=seconds,
        default=None,
        metavar="DURATION",
        help="time between replayed analyses: 10s, 2m, 1h or plain seconds (default 10s)",
    )
    parser.add_argument("--host", default=None, help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port to bind (default 8000)")
    parser.add_argument("--workers", type=int, default=None, help="rollout worker threads (default 2)")


UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def seconds(text: str) -> float:
    """A duration (`10s`, `2m`, `1h`, `500ms`, `7.5`) in seconds, for argparse."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*(ms|s|m|h)?\s*", text)
    if match is None or float(match.group(1)) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive duration such as 10s, 2m or 1h")
    return float(match.group(1)) * UNITS[match.group(2) or "s"]


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from service.app import create_app
    from service.settings import ServiceSettings

    overrides: dict[str, object] = {}
    if args.models:
        overrides["models"] = [str(p) for p in args.models]
    if args.data is not None:
        overrides["data"] = str(args.data)
    if args.replay is not None:
        overrides["replay"] = str(args.replay)
    if args.replay_every is not None:
        overrides["replay_every_s"] = args.replay_every
    for name in ("host", "port", "workers"):
        value = getattr(args, name)
        if value is not None:
            overrides[name] = value
    settings = ServiceSettings.from_overrides(**overrides)
    app = create_app(settings)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="info")
    return 0
