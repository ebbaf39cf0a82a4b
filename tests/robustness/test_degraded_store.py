"""A store that cannot write (a path that is a file, a full disk, a full index): answers still come back."""

from __future__ import annotations

import errno
import logging
import sqlite3
from pathlib import Path

import pytest

from service import store as store_module
from service.store import ForecastStore
from tests.service.conftest import make_client

POINT = {"latitude": 40, "longitude": -120, "forecast_hours": 12, "hourly": "air"}


def test_store_path_that_is_a_file_serves_from_memory(
    service_settings, counting, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the store folder should be")
    settings = service_settings.model_copy(update={"store_dir": blocker})
    with caplog.at_level(logging.WARNING), make_client(settings, counting) as client:
        ready = client.get("/ready")
        assert ready.status_code == 200
        assert ready.json()["store"]["writable"] is False and blocker.name in ready.json()["store"]["problem"]
        assert str(blocker) not in ready.text
        point = client.get("/v1/forecast", params=POINT)
        assert point.status_code == 200, point.text
        assert len(point.json()["hourly"]["air"]) == 12
        fid = client.post("/v1/forecasts", json={"forecast_hours": 12}).json()["id"]
        status = client.get(f"/v1/forecasts/{fid}").json()
        assert status["status"] == "completed", status  # the rollout the point request computed, in memory
        assert client.get(f"/v1/forecasts/{fid}/map.png").status_code == 200
        download = client.get(f"/v1/forecasts/{fid}/data")
        assert download.status_code == 503 and "not stored" in download.json()["reason"]
    assert blocker.read_text().startswith("a file")
    assert any("computed and served but not stored" in r.getMessage() for r in caplog.records)
    assert any("served from memory, not stored" in r.getMessage() for r in caplog.records)


def test_disk_full_on_rename_answers_and_leaves_no_temp_file(
    service_settings, counting, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def full(src, dst) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(dst))

    with make_client(service_settings, counting) as client:
        monkeypatch.setattr(store_module.os, "replace", full)
        with caplog.at_level(logging.WARNING):
            point = client.get("/v1/forecast", params=POINT)
        assert point.status_code == 200, point.text
        assert any("No space left on device" in r.getMessage() for r in caplog.records)
        rollouts = service_settings.store_dir / "rollouts"
        assert list(rollouts.iterdir()) == []  # the temporary file went away, nothing half-written remains
        monkeypatch.undo()
        again = client.get("/v1/forecast", params={**POINT, "forecast_hours": 18})
        assert again.status_code == 200 and len(list(rollouts.glob("*.nc"))) == 1  # space is back: stored


def test_full_index_on_a_new_forecast_is_a_503_naming_it(
    service_settings, counting, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(self, record, key) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    with make_client(service_settings, counting) as client:
        monkeypatch.setattr(ForecastStore, "_insert_forecast", full)
        response = client.post("/v1/forecasts", json={"forecast_hours": 6})
        assert response.status_code == 503 and response.headers["retry-after"]
        assert "disk is full" in response.json()["reason"]
        assert client.get("/v1/forecast", params=POINT).status_code == 200


def test_a_corrupt_index_is_replaced_in_memory(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = tmp_path / "store"
    root.mkdir()
    (root / "index.sqlite").write_bytes(b"this is not a database" * 100)
    with caplog.at_level(logging.ERROR):
        store = ForecastStore(root)
    assert not store.writable and "not a database" in str(store.problem)
    assert any("not stored" in r.getMessage() for r in caplog.records)
    assert store.forecast("0" * 24) is None
    store.close()
