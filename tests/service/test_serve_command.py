"""`fno-forecast serve` belongs to the service: the library's CLI finds it through an entry point.

(That the library never imports the service is tests/test_architecture.py's to check.)"""

from __future__ import annotations

import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

import fno_forecast.cli as cli
from service import serve_cmd

REPO = Path(__file__).resolve().parents[2]


def test_pyproject_declares_serve_in_the_command_group() -> None:
    tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["entry-points"][cli.COMMAND_GROUP] == {"serve": "service.serve_cmd"}


def test_commands_come_from_the_entry_point_group(monkeypatch: pytest.MonkeyPatch) -> None:
    declared = [
        EntryPoint("serve", "service.serve_cmd", cli.COMMAND_GROUP),
        EntryPoint("inspect", "service.serve_cmd", cli.COMMAND_GROUP),  # cannot shadow a library command
    ]
    monkeypatch.setattr(cli, "entry_points", lambda group: declared if group == cli.COMMAND_GROUP else [])
    parser = cli.build_parser()
    assert "serve" in parser.format_help() and serve_cmd.HELP in parser.format_help()
    args = parser.parse_args(["serve", "--port", "9001"])
    assert args._run is serve_cmd.run and args.port == 9001
    assert parser.parse_args(["inspect", "x.nc"])._run is not serve_cmd.run
    monkeypatch.setattr(cli, "entry_points", lambda group: [])
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["serve"])  # without the service installed there is no serve


def test_help_lists_serve_when_the_service_is_installed(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    assert "serve" in capsys.readouterr().out and "service" in sys.modules
