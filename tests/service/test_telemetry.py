"""Prometheus metrics: one registry per app, the series the README names, parsed by prometheus_client."""

from __future__ import annotations

from fastapi.testclient import TestClient

from service.telemetry import LATENCY_BUCKETS, Telemetry
from tests.service.conftest import make_client, metric

POINT = {"latitude": 40, "longitude": -120, "forecast_hours": 6}


def test_two_apps_count_separately(service_settings, counting) -> None:
    with make_client(service_settings, counting) as first, make_client(service_settings, counting) as second:
        for _ in range(3):
            assert first.get("/health").status_code == 200
        second.get("/health")
        route = {"route": "/health", "method": "GET", "status": "200"}
        assert metric(first.get("/metrics").text, "fno_http_requests_total", **route) == 3
        assert metric(second.get("/metrics").text, "fno_http_requests_total", **route) == 1


def test_latency_histogram_and_scrape_time_readings(client: TestClient) -> None:
    assert client.get("/v1/forecast", params=POINT).status_code == 200
    assert client.get("/v1/forecast", params=POINT).status_code == 200  # from the response cache
    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert metric(text, "fno_http_request_duration_seconds_count", route="/v1/forecast") == 2
    assert metric(text, "fno_http_request_duration_seconds_bucket", route="/v1/forecast", le="+Inf") == 2
    assert metric(text, "fno_cache_hits_total", cache="response") == 1
    assert metric(text, "fno_rollouts_total", how="computed") == 1
    assert metric(text, "fno_rollout_seconds_count") == 1
    assert metric(text, "fno_rollout_failures_total") == 0
    assert metric(text, "fno_models_loaded") == 1 and metric(text, "fno_rollout_queue_depth") == 0


def test_a_restarted_lifespan_replaces_its_readings(service_settings, counting) -> None:
    client = make_client(service_settings, counting)
    for _ in range(2):  # the same app started twice: the readings of the first lifespan are dropped
        with client:
            assert metric(client.get("/metrics").text, "fno_models_loaded") == 1


def test_failed_rollouts_count_apart_from_timed_ones() -> None:
    telemetry = Telemetry()
    telemetry.observe_rollout(1.5, ok=True)
    telemetry.observe_rollout(0.2, ok=False)
    telemetry.observe_request("/x", "GET", 404, LATENCY_BUCKETS[0] / 2)
    text = telemetry.render().decode()
    assert metric(text, "fno_rollout_seconds_count") == 1 and metric(text, "fno_rollout_seconds_sum") == 1.5
    assert metric(text, "fno_rollout_failures_total") == 1
    assert (
        metric(text, "fno_http_request_duration_seconds_bucket", route="/x", le=str(LATENCY_BUCKETS[0])) == 1
    )
