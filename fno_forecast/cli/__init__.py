"""The `fno-forecast` command line.

Each subcommand lives in its own module of this package with two functions:
`add_arguments(parser)` and `run(args) -> int`. Command modules import heavy libraries (torch, xarray)
inside `run`, so `fno-forecast --help` stays fast. Installed packages add commands through the
`fno_forecast.commands` entry-point group (a module with `HELP`, `add_arguments` and `run`): that is how
`serve` arrives from the service, which the library does not know.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Iterator, Sequence
from importlib.metadata import entry_points
from types import ModuleType

from fno_forecast import __version__
from fno_forecast.errors import FnoForecastError

COMMANDS: dict[str, str] = {
    "inspect": "Show the detected schema of gridded data files (time, grid, channels).",
    "train": "Train a neural operator and write a model bundle to OUT/model.",
    "info": "Print a model bundle's metadata.",
    "forecast": "Roll a model out from an initial state and write CF NetCDF or Zarr.",
    "evaluate": "Score a model against persistence and climatology over a period.",
}
COMMAND_GROUP = "fno_forecast.commands"


def _commands() -> Iterator[tuple[str, str, ModuleType]]:
    """(name, help, module) of the library's commands, then those installed packages declare."""
    for name, help_text in COMMANDS.items():
        yield name, help_text, importlib.import_module(f"fno_forecast.cli.{name}_cmd")
    for entry in sorted(entry_points(group=COMMAND_GROUP), key=lambda e: e.name):
        if entry.name not in COMMANDS:
            module = entry.load()
            yield entry.name, str(getattr(module, "HELP", "")), module


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fno-forecast", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"fno-forecast {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, help_text, module in _commands():
        command = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(command)
        command.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except FnoForecastError as error:
        print(f"fno-forecast {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"fno-forecast {args.command}: interrupted", file=sys.stderr)
        return 130
