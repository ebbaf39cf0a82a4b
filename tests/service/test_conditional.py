"""If-None-Match parsed in one place: weak comparison and `*`, for forecasts, the point cache and assets."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from service.conditional import content_etag, etag_matches, meaning_etag


@pytest.mark.parametrize(
    ("header", "etag", "expected"),
    [
        (None, '"a"', False),
        ("", '"a"', False),
        ('"a"', '"a"', True),
        ('W/"a"', '"a"', True),
        ('"a"', 'W/"a"', True),
        (' "x" , W/"a"', 'W/"a"', True),
        ("*", '"a"', True),
        ('"ab"', '"a"', False),
        ('"a"', '"ab"', False),
    ],
)
def test_if_none_match_compares_weakly_and_honours_the_star(header, etag, expected) -> None:
    assert etag_matches(header, etag) is expected


def test_meaning_tags_are_weak_and_content_tags_follow_the_bytes() -> None:
    assert meaning_etag("sha", "2013-01-02T06:00", "q").startswith('W/"')
    assert meaning_etag("sha", "run", "q") != meaning_etag("sha", "run", "q2")
    assert content_etag(b"one") == content_etag(b"one") != content_etag(b"one ")
    assert not content_etag(b"one").startswith("W/")


@pytest.mark.parametrize("form", ["weak", "star"])
def test_dashboard_assets_answer_304_to_weak_tags_and_the_star(client: TestClient, form: str) -> None:
    first = client.get("/static/app.js")
    sent = f"W/{first.headers['etag']}" if form == "weak" else "*"
    again = client.get("/static/app.js", headers={"If-None-Match": sent})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == first.headers["etag"]
    assert again.headers["cache-control"] == first.headers["cache-control"]


def test_the_cached_point_path_sends_the_routes_headers(client: TestClient) -> None:
    params = {"latitude": 40, "longitude": -120, "forecast_hours": 6}
    computed = client.get("/v1/forecast", params=params)
    cached = client.get("/v1/forecast", params=params)
    for name in ("etag", "last-modified", "cache-control", "content-type"):
        assert cached.headers[name] == computed.headers[name], name
    assert cached.content == computed.content
