"""A real uvicorn server on a free loopback port, and the `serve` command's arguments and settings."""

from __future__ import annotations

import json
import urllib.request

import pytest

from fno_forecast.cli import build_parser
from fno_forecast.errors import ConfigError
from service.app import create_app
from service.settings import ServiceSettings
from tests.e2e.conftest import live_server


def test_uvicorn_serves_a_point_forecast(service_settings) -> None:
    with live_server(create_app(service_settings)) as base:
        with urllib.request.urlopen(f"{base}/ready", timeout=10) as response:
            assert json.load(response)["status"] == "ready"
        url = f"{base}/v1/forecast?latitude=40&longitude=-120&forecast_hours=12&hourly=air"
        with urllib.request.urlopen(url, timeout=30) as response:
            body = json.load(response)
            assert response.headers["ETag"]
        assert len(body["hourly"]["air"]) == 12 and body["run"] == "2013-01-02T06:00"


def test_serve_arguments_become_settings(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    import uvicorn as uvicorn_module

    import service.app

    seen = {}
    monkeypatch.setenv("FNO_ADMIN_TOKEN", "from-env")
    monkeypatch.setenv("FNO_STORE_DIR", str(tmp_path / "store"))
    monkeypatch.setattr(service.app, "create_app", lambda settings: seen.setdefault("settings", settings))
    monkeypatch.setattr(uvicorn_module, "run", lambda app, **kwargs: seen.setdefault("run", kwargs))
    args = build_parser().parse_args(
        ["serve", "--model", "a", "--model", "b", "--port", "9001", "--workers", "3"]
    )
    assert args._run(args) == 0
    settings = seen["settings"]
    assert [p.name for p in settings.models] == ["a", "b"] and settings.workers == 3
    assert settings.admin_token == "from-env" and settings.store_dir == tmp_path / "store"
    assert seen["run"] == {"host": "127.0.0.1", "port": 9001, "log_level": "info"}


def test_serve_replay_arguments(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    import uvicorn as uvicorn_module

    import service.app

    seen = {}
    monkeypatch.setattr(service.app, "create_app", lambda settings: seen.setdefault("settings", settings))
    monkeypatch.setattr(uvicorn_module, "run", lambda app, **kwargs: None)
    args = build_parser().parse_args(["serve", "--replay", "bundled", "--replay-every", "2m"])
    assert args._run(args) == 0
    assert str(seen["settings"].replay) == "bundled" and seen["settings"].replay_every_s == 120.0
    for good, value in (("500ms", 0.5), ("10s", 10.0), ("1h", 3600.0), ("7.5", 7.5)):
        assert build_parser().parse_args(["serve", "--replay-every", good]).replay_every == value
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--replay-every", "soon"])
    assert "not a positive duration" in capsys.readouterr().err


def test_bad_settings_name_the_field() -> None:
    with pytest.raises(ConfigError, match="workers"):
        ServiceSettings.from_overrides(workers=0)
