"""A real uvicorn server on a free loopback port, and the `serve` command's arguments and settings."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.request

import pytest
import uvicorn

from fno_forecast.cli import build_parser
from fno_forecast.errors import ConfigError
from service.app import create_app
from service.settings import ServiceSettings


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_uvicorn_serves_a_point_forecast(service_settings) -> None:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(service_settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
            time.sleep(0.05)
        base = f"http://127.0.0.1:{port}"
        with urllib.request.urlopen(f"{base}/ready", timeout=10) as response:
            assert json.load(response)["status"] == "ready"
        url = f"{base}/v1/forecast?latitude=40&longitude=-120&forecast_hours=12&hourly=air"
        with urllib.request.urlopen(url, timeout=30) as response:
            body = json.load(response)
            assert response.headers["ETag"]
        assert len(body["hourly"]["air"]) == 12 and body["run"] == "2013-01-02T06:00"
    finally:
        server.should_exit = True
        thread.join(10)
    assert not thread.is_alive()


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


def test_bad_settings_name_the_field() -> None:
    with pytest.raises(ConfigError, match="workers"):
        ServiceSettings.from_overrides(workers=0)
