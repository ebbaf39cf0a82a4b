"""`fno-forecast serve`: serve forecasts over HTTP.

The command belongs to the service; the library's CLI finds it through the `fno_forecast.commands`
entry point (pyproject.toml) and never imports `service` by name. Like the library's command modules it
has `HELP`, `add_arguments(parser)` and `run(args) -> int`, and imports uvicorn and the app inside `run`.
"""

from __future__ import annotations

import argparse
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
        help="NetCDF, Zarr or GRIB source of initial states; its times are the available runs "
        "(default: the bundled 20 NCEP steps)",
    )
    parser.add_argument("--host", default=None, help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port to bind (default 8000)")
    parser.add_argument("--workers", type=int, default=None, help="rollout worker threads (default 2)")


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from service.app import create_app
    from service.settings import ServiceSettings

    overrides: dict[str, object] = {}
    if args.models:
        overrides["models"] = [str(p) for p in args.models]
    if args.data is not None:
        overrides["data"] = str(args.data)
    for name in ("host", "port", "workers"):
        value = getattr(args, name)
        if value is not None:
            overrides[name] = value
    settings = ServiceSettings.from_overrides(**overrides)
    app = create_app(settings)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="info")
    return 0
