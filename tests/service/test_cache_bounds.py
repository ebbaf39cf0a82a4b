"""The response cache: keyed on the parsed request, bounded in entries and in bytes."""

from __future__ import annotations

from fastapi.testclient import TestClient

from service.cache import LRUCache, RenderedResponse, response_cache
from tests.service.conftest import make_client


def rendered(size: int) -> RenderedResponse:
    return RenderedResponse(b"x" * size, "application/json", '"e"', "date", "run", "sha")


def test_byte_bound_evicts_the_oldest_and_refuses_what_never_fits() -> None:
    cache = response_cache(entries=100, max_bytes=10_000)
    for k in range(5):
        cache.put(k, rendered(2_000))
    fits = 10_000 // rendered(2_000).nbytes()
    assert fits == 3 and len(cache) == fits and cache.bytes <= 10_000  # the 2 oldest went
    assert cache.peek(1) is None and cache.peek(2) is not None
    cache.put("huge", rendered(20_000))
    assert cache.peek("huge") is None and len(cache) == fits
    cache.put(4, rendered(10))  # replacing an entry replaces its size
    assert cache.bytes == sum(r.nbytes() for r in (cache.peek(k) for k in (2, 3, 4)))
    cache.clear()
    assert (len(cache), cache.bytes) == (0, 0)
    plain: LRUCache[int, int] = LRUCache(2)
    for k in range(3):
        plain.put(k, k)
    assert len(plain) == 2 and plain.peek(0) is None


def coordinates(n: int) -> dict[str, str]:
    lats = ",".join(f"{35.0 + (i % 100) * 0.1:.1f}" for i in range(n))
    lons = ",".join(f"{-125.0 + (i // 100) * 0.5:.1f}" for i in range(n))
    return {"latitude": lats, "longitude": lons}


def test_cache_busting_with_unknown_parameters_adds_no_entry(client: TestClient) -> None:
    services = client.app.state.services
    params = {**coordinates(1000), "hourly": "temperature_2m", "forecast_days": 16, "timezone": "GMT"}
    first = client.get("/v1/forecast", params=params)
    assert first.status_code == 200 and len(first.json()) == 1000
    size = services.responses.bytes
    assert len(services.responses) == 1 and size >= len(first.content)
    for n in range(1, 41):
        again = client.get("/v1/forecast", params={**params, "x": str(n)})
        assert again.content == first.content
    assert (len(services.responses), services.responses.bytes) == (1, size)
    assert services.responses.hits == 40


def test_distinct_answers_stay_within_the_byte_budget(service_settings, counting) -> None:
    settings = service_settings.model_copy(update={"response_cache_bytes": 400_000})
    with make_client(settings, counting) as client:
        services = client.app.state.services
        for n in range(1, 17):
            params = {**coordinates(100), "hourly": "air", "forecast_days": n}
            assert client.get("/v1/forecast", params=params).status_code == 200
            assert services.responses.bytes <= 400_000
        assert 1 <= len(services.responses) < 16
