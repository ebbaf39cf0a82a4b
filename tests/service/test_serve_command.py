"""`fno-forecast serve` belongs to the service: the library's CLI finds it through an entry point."""

from __future__ import annotations

import ast
import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

import fno_forecast.cli as cli
from service import serve_cmd

REPO = Path(__file__).resolve().parents[2]


def test_the_library_never_imports_the_service() -> None:
    offenders = []
    for path in sorted((REPO / "fno_forecast").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            offenders += [f"{path.relative_to(REPO)}: {n}" for n in names if n.split(".")[0] == "service"]
    assert offenders == []


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
