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
    # The only absolute URLs allowed are names, not fetches: the SVG namespace, and the home page that
    # the vendored uPlot names in its banner comment.
    allowed = {"http://www.w3.org/2000/svg", "https://github.com/leeoniya/uPlot"}
    for name in ["index.html", *dashboard.ASSETS]:
        text = dashboard.read_asset(name).decode()
        urls = set(re.findall(r"(?:https?:)?//[A-Za-z0-9.-]+\.[A-Za-z]{2,}[^\s\"'`)]*", text)) - allowed
        assert urls == set(), f"{name} refers to {urls}"
        assert "@import" not in text and "url(" not in text.replace("url(data:", ""), name


def test_vendored_libraries_are_served_with_their_licence_beside_them(client: TestClient) -> None:
    from importlib import resources

    vendor = resources.files(dashboard.STATIC_PACKAGE).joinpath(dashboard.STATIC_FOLDER, "vendor")
    vendored = [name for name in dashboard.ASSETS if name.startswith("vendor/")]
    assert vendored, "the chart library is served from static/vendor/"
    for name in vendored:
        asset = client.get(f"/static/{name}")
        assert asset.status_code == 200 and asset.headers["content-type"] == dashboard.ASSETS[name]
        library = name.removeprefix("vendor/").split(".")[0]
        licence = vendor.joinpath(f"{library}.LICENSE").read_text()
        assert "MIT License" in licence and "Permission is hereby granted" in licence
    assert b"uPlot (v1.6.32)" in client.get("/static/vendor/uPlot.iife.min.js").content
