"""Forecast store (files + SQLite index), LRU cache and single-flight job manager."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from service.cache import LRUCache
from service.jobs import JobManager, QueueFull
from service.store import ForecastRecord, ForecastStore, RunKey, forecast_id

KEY = RunKey(model_id="m", model_sha256="ab" * 32, run="2013-01-02T06:00", hours=12)


def _write(text: str):
    return lambda path: Path(path).write_text(text)


def test_rollouts_and_forecasts_survive_reopening(tmp_path: Path) -> None:
    store = ForecastStore(tmp_path)
    record = store.put_rollout(KEY, _write("payload"), seconds=1.5)
    fid = forecast_id(KEY, ("air",), (30.0, 230.0, 50.0, 250.0))
    store.add_forecast(ForecastRecord(fid, KEY, ("air",), (30.0, 230.0, 50.0, 250.0), time.time()))
    store.close()
    again = ForecastStore(tmp_path)
    found = again.rollout(KEY)
    assert found is not None and found.path.read_text() == "payload"
    assert found.computed_at == pytest.approx(record.computed_at) and found.seconds == 1.5
    forecast = again.forecast(fid)
    assert forecast is not None and forecast.key == KEY and forecast.bbox == (30.0, 230.0, 50.0, 250.0)
    assert [p.name for p in (tmp_path / "rollouts").iterdir()] == [f"{KEY.digest}.nc"]  # no temp left


def test_delete_and_hostile_ids(tmp_path: Path) -> None:
    store = ForecastStore(tmp_path)
    store.put_rollout(KEY, _write("x"), seconds=0.1)
    fid = forecast_id(KEY, ("air",), None)
    store.add_forecast(ForecastRecord(fid, KEY, ("air",), None, time.time()))
    for hostile in ("../index.sqlite", "x" * 24, fid.upper(), ""):
        assert store.forecast(hostile) is None
    assert store.delete_forecast(fid) is not None
    assert store.rollout(KEY) is None and store.forecast(fid) is None


def test_lru_evicts_the_least_recently_used() -> None:
    cache: LRUCache[str, int] = LRUCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1
    cache.put("c", 3)
    assert cache.get("b") is None and cache.get("a") == 1 and cache.get("c") == 3
    assert (cache.hits, cache.misses) == (3, 1)


def test_single_flight_and_admission() -> None:
    manager = JobManager(workers=1, max_queue=2)
    gate = threading.Event()
    calls = []

    def compute(job):
        calls.append(job.key)
        gate.wait(5)
        return "done"

    keys = [RunKey("m", "s", "r", h) for h in (6, 12, 18)]
    first = manager.single_flight(keys[0], total_steps=1, cached=lambda: None, compute=compute)
    same = manager.single_flight(keys[0], total_steps=1, cached=lambda: None, compute=compute)
    assert same is first
    manager.single_flight(keys[1], total_steps=1, cached=lambda: None, compute=compute)
    with pytest.raises(QueueFull) as caught:
        manager.single_flight(keys[2], total_steps=1, cached=lambda: None, compute=compute)
    assert caught.value.retry_after >= 1 and manager.depth == 2
    gate.set()
    assert first.future.result(timeout=5) == "done"
    manager.shutdown()
    assert calls.count(keys[0]) == 1
