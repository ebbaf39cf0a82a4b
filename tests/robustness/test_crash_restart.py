"""SIGKILL the server while rollouts run, restart it on the same store: finished forecasts survive, unfinished
ones are computed again on their next request, and the SQLite index agrees with the files."""

from __future__ import annotations

import io
import sqlite3
import time
import urllib.request
from pathlib import Path

import pytest
import xarray as xr

from tests.robustness.liveserver import LiveServer
from tests.service.conftest import metric

SLOW_HOURS = (240, 234)  # 40 and 39 steps: seconds each on the tiny model, long enough to be killed mid-way


def wait_status(server: LiveServer, fid: str, wanted: set[str], *, timeout_s: float = 120.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status, body = server.get_json(f"/v1/forecasts/{fid}")
        assert status == 200, body
        if body["status"] in wanted:
            return body
        time.sleep(0.05)
    raise AssertionError(f"forecast {fid} never reached {wanted}: {body}\n{server.log_tail()}")


def download(server: LiveServer, fid: str) -> xr.Dataset:
    with urllib.request.urlopen(f"{server.url}/v1/forecasts/{fid}/data", timeout=60) as response:
        return xr.open_dataset(io.BytesIO(response.read()), engine="h5netcdf").load()


def index_rows(store: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(f"file:{store / 'index.sqlite'}?mode=ro", uri=True) as db:
        return db.execute("SELECT key, file FROM rollouts").fetchall()


@pytest.mark.slow
def test_sigkill_during_rollouts_then_restart_on_the_same_store(live_server, tmp_path: Path) -> None:
    store = tmp_path / "store"
    first = live_server(store_dir=store, workers=1)
    status, created = first.post_json("/v1/forecasts", {"forecast_hours": 12})
    assert status == 202, created
    done_id = created["id"]
    wait_status(first, done_id, {"completed"})
    before = download(first, done_id)
    unfinished = [first.post_json("/v1/forecasts", {"forecast_hours": h})[1]["id"] for h in SLOW_HOURS]
    running = wait_status(first, unfinished[0], {"running", "completed"})
    queued = first.get_json(f"/v1/forecasts/{unfinished[1]}")[1]
    first.kill()
    assert running["status"] == "running" and queued["status"] == "queued", (running, queued)

    # What a crash can leave besides: a temporary file of a dead process, an index row whose file is gone.
    rollouts = store / "rollouts"
    (rollouts / f".{'f' * 24}.999999999.1.tmp.nc").write_bytes(b"half a netCDF file")
    with sqlite3.connect(store / "index.sqlite") as db:
        db.execute(
            "INSERT INTO rollouts VALUES (?, 'm', 'sha', '2013-01-02T06:00', 6, ?, 0, 0)",
            ("e" * 24, "e" * 24 + ".nc"),
        )

    second = live_server(store_dir=store, workers=1)
    assert not list(rollouts.glob(".*.tmp.nc")), list(rollouts.iterdir())
    assert ("e" * 24, "e" * 24 + ".nc") not in index_rows(store)

    assert wait_status(second, done_id, {"completed", "failed"})["status"] == "completed"
    xr.testing.assert_identical(download(second, done_id)["air"], before["air"])
    with urllib.request.urlopen(f"{second.url}/metrics", timeout=30) as response:
        metrics = response.read().decode()
    assert metric(metrics, "fno_rollouts_total", how="computed") == 0  # served from the store, not recomputed

    for fid in unfinished:  # re-run on their first request after the restart
        first_look = second.get_json(f"/v1/forecasts/{fid}")[1]
        assert first_look["status"] in ("queued", "running", "completed"), first_look
    for fid, hours in zip(unfinished, SLOW_HOURS, strict=True):
        body = wait_status(second, fid, {"completed", "failed"})
        assert body["status"] == "completed" and body["forecast_hours"] == hours, body
    second.stop()

    rows = index_rows(store)
    files = {p.name for p in rollouts.iterdir()}
    assert len(rows) == 3 and all(name in files for _, name in rows), (rows, files)
    assert files == {name for _, name in rows}  # no file without a row, no temporary file left
