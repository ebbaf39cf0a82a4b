"""The forecast cycle through a watched data folder: a dropped file becomes a run, refused files change nothing.

Polls are driven by calling the folder feed's `tick()` (the background interval is an hour), and rollouts
are awaited with a bounded wait on the run's state.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from fastapi.testclient import TestClient

from service.hub import run_key
from service.settings import ServiceSettings
from tests.fixtures.bundle import write_initial_states
from tests.service.conftest import CountingForecast, make_client

TOKEN = {"Authorization": "Bearer s3cret"}
POINT = {"latitude": 40, "longitude": -120, "hourly": "air"}
FIRST_STEPS = 6  # 2013-01-01T00 .. 2013-01-02T06; later steps arrive one file at a time


@pytest.fixture(scope="module")
def analyses_nc(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Ten 6-hourly steps on the tiny grid; the folder starts with the first six."""
    return write_initial_states(tmp_path_factory.mktemp("analyses") / "all.nc", n_steps=10)


def drop(folder: Path, name: str, dataset: xr.Dataset) -> Path:
    """Write `dataset` into `folder` as a file appears there: a temporary name, then a rename."""
    temp = folder / f".{name}.tmp"
    dataset.to_netcdf(temp)
    final = folder / name
    os.replace(temp, final)
    return final


def steps(source: Path, start: int, stop: int) -> xr.Dataset:
    with xr.open_dataset(source) as dataset:
        return dataset.isel(time=slice(start, stop)).load()


@pytest.fixture()
def folder(tmp_path: Path, analyses_nc: Path) -> Path:
    data = tmp_path / "incoming"
    data.mkdir()
    drop(data, "first.nc", steps(analyses_nc, 0, FIRST_STEPS))
    return data


@pytest.fixture()
def live_client(
    service_settings: ServiceSettings, counting: CountingForecast, folder: Path
) -> Iterator[TestClient]:
    settings = service_settings.model_copy(
        update={"data": folder, "poll_interval_s": 3600.0, "admin_token": "s3cret"}
    )
    with make_client(settings, counting) as client:
        yield client


def wait_for_run(client: TestClient, run: str, *, status: str = "completed", within_s: float = 120) -> dict:
    deadline = time.monotonic() + within_s
    while True:
        body = client.get("/v1/runs").json()
        rows = {row["run"]: row for row in body["runs"]}
        if rows.get(run, {}).get("status") == status:
            return body
        assert time.monotonic() < deadline, f"run {run} never became {status}: {body}"
        time.sleep(0.05)


def lat_weighted_rmse(error: np.ndarray, lat: np.ndarray) -> float:
    weights = np.cos(np.deg2rad(lat))
    weights = weights / weights.mean()
    return float(np.sqrt((error**2 * weights[:, None]).mean()))


def test_a_dropped_file_becomes_the_latest_run_announced_and_verified(
    live_client: TestClient, counting: CountingForecast, folder: Path, analyses_nc: Path
) -> None:
    client, services = live_client, live_client.app.state.services
    before = client.get("/v1/forecast", params=POINT)
    assert before.status_code == 200 and before.json()["run"] == "2013-01-02T06:00"
    assert client.get("/v1/runs").json()["latest"] == "2013-01-02T06:00"
    calls = counting.calls

    drop(folder, "second.nc", steps(analyses_nc, FIRST_STEPS, FIRST_STEPS + 1))
    assert services.folder.tick() == ["second.nc"]
    body = wait_for_run(client, "2013-01-02T12:00")
    assert body["latest"] == "2013-01-02T12:00" and body["provenance"] == "live"
    assert counting.calls == calls + 1  # computed once, at arrival

    after = client.get("/v1/forecast", params=POINT)
    assert after.json()["run"] == "2013-01-02T12:00"
    assert after.headers["ETag"] != before.headers["ETag"] and after.headers["Last-Modified"]
    assert counting.calls == calls + 1  # served from the computed run
    kinds = [(e.kind, e.data["run"]) for e in services.live.events.since(0)]
    assert ("run", "2013-01-02T12:00") in kinds

    assert services.folder.tick() == []  # nothing new: nothing happens
    drop(folder, "third.nc", steps(analyses_nc, FIRST_STEPS + 1, FIRST_STEPS + 2))
    services.folder.tick()
    wait_for_run(client, "2013-01-02T18:00")
    card = client.get("/v1/verification").json()
    runs = {row["run"]: row for row in card["per_run"]}
    # The 06 run (computed by the first request) is scored at +6 h and +12 h, the 12 run at +6 h.
    assert [lead["lead_hours"] for lead in runs["2013-01-02T06:00"]["leads"]] == [6.0, 12.0]
    lead6 = runs["2013-01-02T12:00"]["leads"][0]
    assert lead6["lead_hours"] == 6.0 and lead6["valid_time"] == "2013-01-02T18:00"
    kinds = [(e.kind, e.data["run"]) for e in services.live.events.since(0)]
    assert ("verification", "2013-01-02T12:00") in kinds

    # The numbers: the scorecard against an independent latitude-weighted RMSE of the same fields.
    truth = steps(analyses_nc, FIRST_STEPS + 1, FIRST_STEPS + 2)["air"].values[0]
    init = steps(analyses_nc, FIRST_STEPS, FIRST_STEPS + 1)["air"].values[0]
    lat = truth_lat = steps(analyses_nc, 0, 1)["lat"].values
    assert truth_lat[0] > truth_lat[-1]
    persistence = lat_weighted_rmse(init - truth, lat)
    assert lead6["rmse"]["persistence"]["air"] == pytest.approx(persistence, rel=1e-4)
    entry = services.catalog.get(None)
    rollout = services.hub.memory.peek(run_key(entry, "2013-01-02T12:00", services.live.default_hours(entry)))
    assert rollout.key.hours == 192  # the 7 days of a default answer, in any time zone
    model = lat_weighted_rmse(rollout.values[0, 0] - truth, lat)
    assert lead6["rmse"]["model"]["air"] == pytest.approx(model, rel=1e-4)
    summary = {row["lead_hours"]: row for row in card["per_lead"]}
    assert summary[6.0]["runs"] == 2 and summary[12.0]["runs"] == 1
    six = [runs[r]["leads"][0]["rmse"]["model"]["air"] for r in ("2013-01-02T06:00", "2013-01-02T12:00")]
    assert summary[6.0]["rmse"]["model"]["air"] == pytest.approx(np.sqrt(np.mean(np.square(six))), rel=1e-4)


def _with_nan(dataset: xr.Dataset) -> xr.Dataset:
    air = dataset["air"].copy()
    air[0, 3, 4] = np.nan
    return dataset.assign(air=air)


def _in_celsius(dataset: xr.Dataset) -> xr.Dataset:
    return dataset.assign(air=(dataset["air"] - 273.15).assign_attrs(units="degC"))


def _other_grid(dataset: xr.Dataset) -> xr.Dataset:
    return dataset.isel(lon=slice(0, 10))


def _half_step(dataset: xr.Dataset) -> xr.Dataset:
    return dataset.assign_coords(time=dataset["time"].values + np.timedelta64(3, "h"))


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (_with_nan, "NaN or Inf"),
        (_in_celsius, "degC"),
        (_other_grid, "grid"),
        (_half_step, "whole number of 6-hour steps"),
        (None, "corrupt"),
    ],
)
def test_a_bad_file_is_refused_and_changes_nothing(
    live_client: TestClient,
    counting: CountingForecast,
    folder: Path,
    analyses_nc: Path,
    change,
    words: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client, services = live_client, live_client.app.state.services
    before = client.get("/v1/forecast", params=POINT)
    runs_before = client.get("/v1/runs").json()
    calls = counting.calls
    if change is None:
        (folder / ".bad.nc.tmp").write_bytes(b"CDF\x01 this is not a netCDF file")
        os.replace(folder / ".bad.nc.tmp", folder / "bad.nc")
    else:
        drop(folder, "bad.nc", change(steps(analyses_nc, FIRST_STEPS, FIRST_STEPS + 1)))
    with caplog.at_level(logging.ERROR, logger="service.live"):
        assert services.folder.tick() == ["bad.nc"]
    (line,) = [r.getMessage() for r in caplog.records if "bad.nc" in r.getMessage()]
    assert words in line and str(folder) not in line
    ready = client.get("/ready").json()
    (refusal,) = ready["refused_analyses"]
    assert "bad.nc" in refusal and words in refusal and str(folder) not in refusal
    assert client.get("/v1/runs").json() == runs_before
    after = client.get("/v1/forecast", params=POINT)
    assert after.headers["ETag"] == before.headers["ETag"] and after.content == before.content
    assert counting.calls == calls and len(services.live.analyses.times) == FIRST_STEPS


def test_upload_needs_the_token_and_is_checked(
    live_client: TestClient, counting: CountingForecast, folder: Path, analyses_nc: Path, tmp_path: Path
) -> None:
    client = live_client
    good = tmp_path / "upload.nc"
    steps(analyses_nc, FIRST_STEPS, FIRST_STEPS + 1).to_netcdf(good)
    anonymous = client.post("/v1/analyses?name=up.nc", content=b"x" * 10)
    assert anonymous.status_code == 401
    bad_name = client.post("/v1/analyses?name=../up.nc", content=good.read_bytes(), headers=TOKEN)
    assert bad_name.status_code == 422 and bad_name.json()["parameter"] == "name"
    nan = tmp_path / "nan.nc"
    _with_nan(steps(analyses_nc, FIRST_STEPS, FIRST_STEPS + 1)).to_netcdf(nan)
    refused = client.post("/v1/analyses?name=nan.nc", content=nan.read_bytes(), headers=TOKEN)
    assert refused.status_code == 422 and "nan.nc" in refused.json()["reason"]
    assert "NaN" in refused.json()["reason"] and str(tmp_path) not in refused.text
    assert not (folder / "nan.nc").exists() and not list(folder.glob(".*"))
    accepted = client.post("/v1/analyses?name=up.nc", content=good.read_bytes(), headers=TOKEN)
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["new_times"] == ["2013-01-02T12:00"]
    assert (folder / "up.nc").is_file()  # kept in the watched folder, read again after a restart
    assert live_client.app.state.services.folder.tick() == []  # the poller does not read it twice
    assert wait_for_run(client, "2013-01-02T12:00")["latest"] == "2013-01-02T12:00"
    again = client.post("/v1/analyses?name=up2.nc", content=good.read_bytes(), headers=TOKEN)
    assert again.status_code == 200 and again.json()["new_times"] == []


def test_old_runs_beyond_the_retention_limit_leave_index_memory_and_store(
    service_settings: ServiceSettings, counting: CountingForecast, folder: Path, analyses_nc: Path
) -> None:
    settings = service_settings.model_copy(
        update={"data": folder, "poll_interval_s": 3600.0, "retain_runs": 3}
    )
    with make_client(settings, counting) as client:
        services = client.app.state.services
        drop(folder, "second.nc", steps(analyses_nc, FIRST_STEPS, FIRST_STEPS + 1))
        services.folder.tick()
        body = wait_for_run(client, "2013-01-02T12:00")
        assert [row["run"] for row in body["runs"]] == [
            "2013-01-02T00:00",
            "2013-01-02T06:00",
            "2013-01-02T12:00",
        ]
        assert client.get("/v1/forecast", params=POINT | {"run": "2013-01-01T18:00"}).status_code == 400
        kept = client.get("/v1/forecast", params=POINT | {"run": "2013-01-02T00:00"})
        assert kept.status_code == 200  # computed and stored, then removed when it falls out
        drop(folder, "third.nc", steps(analyses_nc, FIRST_STEPS + 1, FIRST_STEPS + 2))
        services.folder.tick()
        body = wait_for_run(client, "2013-01-02T18:00")
        assert [row["run"] for row in body["runs"]][0] == "2013-01-02T06:00"
        stored = services.store._db.execute("SELECT run FROM rollouts").fetchall()
        assert sorted(r[0] for r in stored) == ["2013-01-02T12:00", "2013-01-02T18:00"]
        assert len(list((settings.store_dir / "rollouts").glob("*.nc"))) == 2
        gone = client.get("/v1/forecast", params=POINT | {"run": "2013-01-02T00:00"})
        assert gone.status_code == 400
        events = services.live.events.since(0)
        removed = [e.data["run"] for e in events if e.data.get("status") == "removed"]
        first_day = [f"2013-01-01T{hour}:00" for hour in ("06", "12", "18")]  # 00 has no history
        assert removed == [*first_day, "2013-01-02T00:00"]


def test_a_run_that_fails_is_reported_without_host_paths_and_the_latest_stays(
    service_settings: ServiceSettings, folder: Path, analyses_nc: Path, tmp_path: Path
) -> None:
    from fno_forecast.errors import ForecastError
    from service.app import create_app
    from service.deps import get_forecast_function

    def failing(*_args, **_kwargs):
        raise ForecastError(f"{tmp_path}/incoming/second.nc: NaN at step 3")

    async def dependency():
        return failing

    app = create_app(service_settings.model_copy(update={"data": folder, "poll_interval_s": 3600.0}))
    app.dependency_overrides[get_forecast_function] = dependency
    with TestClient(app) as client:
        services = app.state.services
        drop(folder, "second.nc", steps(analyses_nc, FIRST_STEPS, FIRST_STEPS + 1))
        services.folder.tick()
        body = wait_for_run(client, "2013-01-02T12:00", status="failed")
        assert body["latest"] == "2013-01-02T06:00"  # a failed run is never made the latest
        row = next(r for r in body["runs"] if r["run"] == "2013-01-02T12:00")
        assert "NaN at step 3" in row["error"] and str(tmp_path) not in row["error"]
        events = [e.data for e in services.live.events.since(0)]
        assert {"status": "failed", "run": "2013-01-02T12:00"}.items() <= events[-1].items()


def test_after_a_restart_a_stored_run_answers_shorter_requests_without_recomputing(
    service_settings: ServiceSettings, counting: CountingForecast, folder: Path, analyses_nc: Path
) -> None:
    settings = service_settings.model_copy(update={"data": folder, "poll_interval_s": 3600.0})
    with make_client(settings, counting) as client:
        drop(folder, "second.nc", steps(analyses_nc, FIRST_STEPS, FIRST_STEPS + 1))
        client.app.state.services.folder.tick()
        wait_for_run(client, "2013-01-02T12:00")
        first = client.get("/v1/forecast", params=POINT | {"forecast_hours": 24}).json()
    calls = counting.calls
    with make_client(settings, counting) as client:  # the folder now starts with both files
        assert client.get("/v1/runs").json()["latest"] == "2013-01-02T12:00"
        again = client.get("/v1/forecast", params=POINT | {"forecast_hours": 24})
        assert again.status_code == 200 and again.json()["hourly"] == first["hourly"]
        assert counting.calls == calls  # the leading 24 h of the stored 192 h run
        assert client.app.state.services.hub.store_loads == 1
