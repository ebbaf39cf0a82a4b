"""GET /v1/forecast and the model, health and metrics routes, through TestClient and the tiny bundle."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import xarray as xr
from fastapi.testclient import TestClient

from fno_forecast.bundle import load_bundle
from fno_forecast.forecast import forecast
from tests.fixtures.bundle import TINY_LAT, TINY_LON
from tests.service.conftest import metric

LATEST = "2013-01-02T06:00"


def test_health_ready_and_models(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    listing = client.get("/v1/models").json()
    model_id = listing["default"]
    assert listing["models"][0]["channels"] == ["air", "z500"]
    detail = client.get(f"/v1/models/{model_id}").json()
    assert [(c["name"], c["units"]) for c in detail["channels"]] == [("air", "K"), ("z500", "m")]
    assert detail["step_hours"] == 6.0 and detail["grid"]["nlat"] == 8
    assert detail["training"]["train_period"] == "2013-01-01/2013-12-31"
    assert detail["runs"] == {"count": 5, "first": "2013-01-01T06:00", "latest": LATEST}  # T00 has no history
    assert detail["openmeteo_variables"]["temperature_2m"].startswith("channel 'air'")
    assert client.get("/v1/models/nope").status_code == 404
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/forecast", "/v1/forecasts", "/v1/forecasts/{fid}/stream", "/metrics"} <= set(paths)
    assert client.get("/docs").status_code == 200


def test_point_forecast_matches_the_library(client: TestClient, service_settings, initial_states_nc) -> None:
    lat, lon = float(TINY_LAT[3]), float(TINY_LON[5]) - 360.0  # a grid point, asked for in degrees west
    response = client.get(
        "/v1/forecast",
        params={"latitude": lat, "longitude": lon, "forecast_hours": 24, "cell_selection": "nearest",
                "hourly": "air,z500,temperature_2m"},
    )  # fmt: skip
    assert response.status_code == 200, response.text
    body = response.json()
    hours = body["hourly"]["time"]
    assert (hours[0], hours[6], len(hours)) == ("2013-01-02T06:00", "2013-01-02T12:00", 24)
    assert body["hourly_units"] == {"time": "iso8601", "air": "K", "z500": "m", "temperature_2m": "°C"}
    assert (body["latitude"], body["longitude"], body["run"]) == (lat, pytest.approx(lon), LATEST)
    assert body["elevation"] == 0.0 and body["timezone"] == "GMT" and body["utc_offset_seconds"] == 0
    bundle = load_bundle(service_settings.models[0])
    assert body["model_sha256"] == bundle.sha256
    with xr.open_dataset(initial_states_nc) as states:
        expected = forecast(bundle, states.load(), 24.0, init_times=LATEST)
        at_run = float(states["air"].sel(time=LATEST).isel(lat=3, lon=5))
    air = expected["air"].isel(lat=3, lon=5).values
    z500 = expected["z"].sel(level=500.0).isel(lat=3, lon=5).values
    # Every 6th hour is a model step; the hours between are linear in time.
    np.testing.assert_allclose(body["hourly"]["air"][6::6], air[:3], atol=0.006)
    np.testing.assert_allclose(body["hourly"]["z500"][6::6], z500[:3], atol=0.006)
    assert body["hourly"]["air"][0] == pytest.approx(at_run, abs=0.006)
    assert body["hourly"]["air"][3] == pytest.approx((at_run + air[0]) / 2, abs=0.006)
    np.testing.assert_allclose(
        np.array(body["hourly"]["temperature_2m"]) + 273.15, body["hourly"]["air"], atol=0.011
    )
    assert response.headers["cache-control"].startswith("public, max-age=")
    assert response.headers["last-modified"].endswith("GMT")


def test_several_locations_csv_unixtime_and_days(client: TestClient) -> None:
    params = {"latitude": "40,45.1", "longitude": "-120,-118.2", "hourly": "z500", "forecast_days": 1}
    many = client.get("/v1/forecast", params=params).json()
    assert isinstance(many, list) and len(many) == 2
    assert list(many[1]["hourly"]) == ["time", "z500"] and len(many[1]["hourly"]["z500"]) == 24
    assert many[1]["longitude"] == pytest.approx(-118.2)  # bilinear answers for the location asked
    unix = client.get("/v1/forecast", params={**params, "timeformat": "unixtime"}).json()
    assert unix[0]["hourly"]["time"][0] == int(np.datetime64("2013-01-02T00:00", "s").astype(int))
    csv = client.get("/v1/forecast", params={**params, "format": "csv"})
    assert csv.headers["content-type"].startswith("text/csv")
    lines = csv.text.splitlines()
    assert lines[0].startswith("location_id,latitude,longitude") and "location_id,time,z500 (m)" in lines
    assert len(lines) == 1 + 2 + 1 + 1 + 2 * 24


def test_etag_gives_304_without_a_body(client: TestClient) -> None:
    params = {"latitude": 40, "longitude": -120, "forecast_hours": 12}
    first = client.get("/v1/forecast", params=params)
    etag = first.headers["etag"]
    again = client.get("/v1/forecast", params=params, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    other = client.get("/v1/forecast", params={**params, "forecast_hours": 18})
    assert other.headers["etag"] != etag


@pytest.mark.parametrize(
    ("params", "parameter", "words"),
    [
        ({"longitude": -120}, "latitude", "required"),
        ({"latitude": "40,41", "longitude": -120}, "longitude", "same number of elements"),
        ({"latitude": "abc", "longitude": -120}, "latitude", "not a number"),
        ({"latitude": 91, "longitude": -120}, "latitude", "-90 to 90"),
        ({"latitude": 40, "longitude": -1e300}, "longitude", "-180 to 180"),
        ({"latitude": 40, "longitude": 240}, "longitude", "-180 to 180"),
        ({"latitude": 40, "longitude": -120, "hourly": "rainbow"}, "hourly", "unknown variable"),
        ({"latitude": 40, "longitude": -120, "daily": "air_max_ever"}, "daily", "unknown daily"),
        ({"latitude": 40, "longitude": -120, "forecast_hours": 999}, "forecast_hours", "0 to 384"),
        ({"latitude": 40, "longitude": -120, "forecast_days": 17}, "forecast_days", "0 to 16"),
        ({"latitude": 40, "longitude": -120, "past_days": -1}, "past_days", "0 to 92"),
        ({"latitude": 40, "longitude": -120, "forecast_hours": "x"}, "forecast_hours", "integer"),
        ({"latitude": 40, "longitude": -120, "elevation": "99999"}, "elevation", "-1000 to 9000"),
        ({"latitude": 40, "longitude": -120, "models": "gfs"}, "models", "unknown model"),
        ({"latitude": 40, "longitude": -120, "run": "2013-05-01T00:00"}, "run", "runs go from"),
        (
            {"latitude": 40, "longitude": -120, "run": "2013-01-01T00:00"},
            "run",
            "runs go from 2013-01-01T06:00",
        ),
        ({"latitude": 40, "longitude": -120, "run": "soon"}, "run", "ISO 8601"),
        ({"latitude": 40, "longitude": -120, "format": "xml"}, "format", "flatbuffers"),
        ({"latitude": 40, "longitude": -120, "timezone": "Mars/Olympus"}, "timezone", "not a valid timezone"),
        ({"latitude": 40, "longitude": -120, "temperature_unit": "kelvin"}, "temperature_unit", "fahrenheit"),
        ({"latitude": 40, "longitude": -120, "start_date": "2013-01-02"}, "end_date", "go together"),
        (
            {"latitude": 40, "longitude": -120, "minutely_15": "temperature_2m"},
            "minutely_15",
            "not supported",
        ),
        ({"latitude": 10, "longitude": -120}, "latitude", "outside the model domain: latitude 32.5..50"),
        ({"latitude": 40, "longitude": -100}, "longitude", "longitude 230..257.5"),
    ],
)
def test_bad_parameters_are_400_naming_the_parameter(client: TestClient, params, parameter, words) -> None:
    response = client.get("/v1/forecast", params=params)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"] is True and body["parameter"] == parameter and words in body["reason"]
    assert parameter in body["reason"]


def test_caps_on_locations_query_and_body(client: TestClient) -> None:
    many = ",".join(["40"] * 1001)
    response = client.get("/v1/forecast", params={"latitude": many, "longitude": many.replace("40", "-120")})
    assert response.status_code == 400 and "at most 1000" in response.json()["reason"]
    assert client.get("/v1/forecast?latitude=" + "4" * 40000).status_code == 414
    big = client.post(
        "/v1/forecasts", content=b"{" + b" " * 70000 + b"}", headers={"content-type": "application/json"}
    )
    assert big.status_code == 413 and big.json()["parameter"] == "body"


def test_identical_concurrent_requests_share_one_rollout(client: TestClient, counting) -> None:
    counting.gate.clear()
    results: list[int] = []

    def ask() -> None:
        results.append(
            client.get(
                "/v1/forecast", params={"latitude": 41, "longitude": -119, "forecast_hours": 30}
            ).status_code
        )

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    assert counting.started.wait(10)
    counting.gate.set()
    for thread in threads:
        thread.join(30)
    assert results == [200] * 8
    assert counting.calls == 1
    metrics = client.get("/metrics").text
    assert metric(metrics, "fno_rollouts_total", how="computed") == 1
    assert metric(metrics, "fno_http_requests_total", route="/v1/forecast", method="GET", status="200") == 8
    assert metric(metrics, "fno_rollout_queue_depth") == 0


def test_full_queue_answers_429_with_retry_after(service_settings, counting) -> None:
    from tests.service.conftest import make_client

    settings = service_settings.model_copy(update={"max_queue": 1})
    counting.gate.clear()
    with make_client(settings, counting) as client:
        job = client.post("/v1/forecasts", json={"forecast_hours": 6})
        assert job.status_code == 202
        busy = client.get("/v1/forecast", params={"latitude": 40, "longitude": -120, "forecast_hours": 12})
        assert busy.status_code == 429 and int(busy.headers["retry-after"]) >= 1
        counting.gate.set()


def test_cors_headers_on_cached_answers(service_settings, counting) -> None:
    from tests.service.conftest import make_client

    settings = service_settings.model_copy(update={"cors_origins": ["https://maps.example"]})
    params = {"latitude": 40, "longitude": -120, "forecast_hours": 6}
    origin = {"Origin": "https://maps.example"}
    with make_client(settings, counting) as client:
        for _ in range(2):  # computed, then from the rendered-response cache
            response = client.get("/v1/forecast", params=params, headers=origin)
            assert response.headers["access-control-allow-origin"] == "https://maps.example"
            assert "ETag" in response.headers["access-control-expose-headers"]
        other = client.get("/v1/forecast", params=params, headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers
        assert metric(client.get("/metrics").text, "fno_cache_hits_total", cache="response") == 2
