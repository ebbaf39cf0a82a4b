"""The dashboard router alone: the page, its assets, caching headers, and nothing fetched from outside."""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from service import dashboard
from service.problems import install_handlers


@pytest.fixture()
def client() -> TestClient:
    app = FastAPI()
    install_handlers(app)
    app.include_router(dashboard.router)
    return TestClient(app)


def referenced_assets(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="static/([^"]+)"', html)


def test_page_links_every_asset_and_each_is_served(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    names = referenced_assets(page.text)
    assert sorted(names) == sorted(dashboard.ASSETS)
    for name in names:
        asset = client.get(f"/static/{name}")
        assert asset.status_code == 200, name
        assert asset.headers["content-type"] == dashboard.ASSETS[name]
        assert asset.content == dashboard.read_asset(name)


def test_assets_answer_304_to_their_etag(client: TestClient) -> None:
    first = client.get("/static/app.js")
    etag = first.headers["etag"]
    again = client.get("/static/app.js", headers={"If-None-Match": f'"other", {etag}'})
    assert again.status_code == 304 and again.content == b""
    other = client.get("/static/app.js", headers={"If-None-Match": '"stale"'})
    assert other.status_code == 200 and other.content == first.content


@pytest.mark.parametrize("name", ["nope.js", "index.html", "app.js.map", "dashboard.py"])
def test_anything_else_is_a_404_naming_it(client: TestClient, name: str) -> None:
    response = client.get(f"/static/{name}")
    assert response.status_code == 404
    assert response.json() == {"error": True, "reason": f"static file {name!r} not found"}


@pytest.mark.parametrize(
    "path", ["/static/..%2Fdashboard.py", "/static/%2e%2e/app.py", "/static/../../pyproject.toml"]
)
def test_no_path_reaches_the_file_system(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert b"import" not in response.content and b"[project]" not in response.content


def test_nothing_is_fetched_from_another_origin() -> None:
    # The only absolute URL allowed is the SVG namespace, which is a name, not a fetch.
    allowed = {"http://www.w3.org/2000/svg"}
    for name in ["index.html", *dashboard.ASSETS]:
        text = dashboard.read_asset(name).decode()
        urls = set(re.findall(r"(?:https?:)?//[A-Za-z0-9.-]+\.[A-Za-z]{2,}[^\s\"'`)]*", text)) - allowed
        assert urls == set(), f"{name} refers to {urls}"
        assert "@import" not in text and "url(" not in text.replace("url(data:", ""), name
