"""GET /v1/events over a real server: new runs and verifications announced, keep-alives, Last-Event-ID resume;
and a replay that feeds a file's analyses one step per tick and says so everywhere."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from service.app import create_app
from service.deps import get_forecast_function
from service.events import EventLog, resume_id
from service.settings import ServiceSettings
from tests.e2e.conftest import live_server
from tests.service.conftest import CountingForecast, make_client
from tests.service.test_live_ingest import FIRST_STEPS, POINT, drop, steps, wait_for_run


def frames(lines: Iterator[str]) -> Iterator[dict[str, str]]:
    """SSE frames as dicts of their fields (`comment` for a `:` line), read until the caller stops."""
    frame: dict[str, str] = {}
    for line in lines:
        if not line:
            if frame:
                yield frame
            frame = {}
        elif line.startswith(":"):
            yield {"comment": line[1:].strip()}
        else:
            name, _, value = line.partition(":")
            frame[name] = value.strip()


def until_both(stream: Iterator[dict[str, str]]) -> dict[str, dict[str, str]]:
    """The first `run` and the first `verification` frame, by kind."""
    seen: dict[str, dict[str, str]] = {}
    for frame in stream:
        if frame.get("event") in ("run", "verification"):
            seen.setdefault(frame["event"], frame)
        if len(seen) == 2:
            return seen
    raise AssertionError(f"the stream ended with only {sorted(seen)}")


@pytest.fixture(scope="module")
def analyses_nc(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.fixtures.bundle import write_initial_states

    return write_initial_states(tmp_path_factory.mktemp("analyses") / "all.nc", n_steps=10)


def test_events_announce_runs_and_verifications_and_resume(
    service_settings: ServiceSettings, counting: CountingForecast, tmp_path: Path, analyses_nc: Path
) -> None:
    folder = tmp_path / "incoming"
    folder.mkdir()
    drop(folder, "first.nc", steps(analyses_nc, 0, FIRST_STEPS))
    settings = service_settings.model_copy(
        update={"data": folder, "poll_interval_s": 3600.0, "keepalive_s": 0.2}
    )
    app = create_app(settings)
    app.dependency_overrides[get_forecast_function] = counting.dependency
    with live_server(app) as base, httpx.Client(base_url=base, timeout=60) as http:
        assert http.get("/v1/forecast", params=POINT).status_code == 200  # the 06 run, to be verified
        with http.stream("GET", "/v1/events") as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            stream = frames(response.iter_lines())
            assert next(stream) == {"retry": "3000"}
            assert next(stream) == {"comment": "keep-alive"}  # nothing happened for keepalive_s
            drop(folder, "second.nc", steps(analyses_nc, FIRST_STEPS, FIRST_STEPS + 1))
            app.state.services.folder.tick()
            seen = until_both(stream)
        run, verified = json.loads(seen["run"]["data"]), json.loads(seen["verification"]["data"])
        assert run["model"] == app.state.services.catalog.default_id and run["run"] == "2013-01-02T12:00"
        assert run["latest"] == "2013-01-02T12:00" and run["provenance"] == "live"
        # The new analysis verifies the 06 run at +6 h as it arrives, before the 12 run is computed.
        assert verified["run"] == "2013-01-02T06:00" and verified["lead_hours"] == [6.0]
        ids = sorted(int(frame["id"]) for frame in seen.values())
        with http.stream("GET", "/v1/events", headers={"Last-Event-ID": str(ids[0] - 1)}) as response:
            again = until_both(frames(response.iter_lines()))
            assert sorted(int(frame["id"]) for frame in again.values()) == ids
            assert json.loads(again["run"]["data"]) == run


def test_a_replay_feeds_one_step_per_tick_and_says_so(
    service_settings: ServiceSettings, counting: CountingForecast, analyses_nc: Path
) -> None:
    settings = service_settings.model_copy(update={"replay": analyses_nc, "replay_every_s": 3600.0})
    with make_client(settings, counting) as client:
        services = client.app.state.services
        ready = client.get("/ready").json()
        assert ready["provenance"] == "replay"
        assert ready["replay"] == {"source": "all.nc", "steps_fed": 2, "steps_total": 10, "every_s": 3600.0}
        assert client.get("/v1/runs").json()["latest"] == "2013-01-01T06:00"
        assert services.replay.tick()
        body = wait_for_run(client, "2013-01-01T12:00")
        assert body["latest"] == "2013-01-01T12:00" and body["provenance"] == "replay"
        point = client.get("/v1/forecast", params=POINT)
        assert point.json()["run"] == "2013-01-01T12:00" and point.headers["X-Provenance"] == "replay"
        assert client.get("/v1/models").headers["X-Provenance"] == "replay"
        assert client.get("/v1/verification").json()["provenance"] == "replay"
        events = services.live.events.since(0)
        assert events and all(event.data["provenance"] == "replay" for event in events)
        assert (
            client.get(f"/v1/models/{services.catalog.default_id}").json()["initial_states"]
            == "replay of all.nc"
        )
        while services.replay.tick():
            pass
        assert services.replay.describe()["steps_fed"] == 10
        body = wait_for_run(client, "2013-01-03T06:00")  # the file's last step
        assert body["latest"] == "2013-01-03T06:00"


def test_the_event_log_keeps_the_last_events_and_resumes_after_an_id() -> None:
    log = EventLog(keep=3)
    for n in range(5):
        log.publish("run", {"n": n})
    assert [event.id for event in log.since(0)] == [3, 4, 5]  # the two oldest are gone
    assert [event.data["n"] for event in log.since(4)] == [4]
    assert resume_id("4", log) == 4 and resume_id(None, log) == 5 and resume_id("junk", log) == 5
    assert log.since(5) == [] and log.last_id == 5
    frame = log.since(4)[0].frame().decode()
    assert frame == 'id: 5\nevent: run\ndata: {"n": 4}\n\n'
