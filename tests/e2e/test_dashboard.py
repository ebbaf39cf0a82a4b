"""The dashboard in a real browser: headless chromium against the real app served by uvicorn.

One page session walks through what a person does: the page loads the default model's latest forecast,
the map appears, a click on the map draws that point's forecast as a chart (the same numbers the API
answers, temperatures in °C and in kelvin one click away), the map carries Natural Earth coastlines and
borders where the map's geometry puts them, the lead-time slider changes the map, the skill card lists the
bundle's scores and the live scorecard plots them (no run is verified yet), the page polls with
If-None-Match and gets 304, nothing is fetched from another origin and the console stays clean.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest
import xarray as xr

from tests.e2e.conftest import live_server
from tests.fixtures.bundle import TINY_LAT, TINY_LON, tiny_state_array

HOURS = 48  # the page's horizon (?hours=): 8 steps of the tiny 6-hourly model
POLL_S = 2  # the page's polling interval (?poll=), seconds

SKILL_CARD = {
    "model": "tiny",
    "data": "synthetic tiny grid",
    "period": ["2014-07-01", "2014-09-30"],
    "inits": 12,
    "scores": [
        {
            "variable": "air",
            "lead_hours": 6,
            "metric": "rmse",
            "model": 0.81,
            "persistence": 1.12,
            "climatology": 2.5,
        },
        {
            "variable": "air",
            "lead_hours": 24,
            "metric": "rmse",
            "model": 1.73,
            "persistence": 1.61,
            "climatology": 2.5,
        },
        {
            "variable": "air",
            "lead_hours": 6,
            "metric": "acc",
            "model": 0.93,
            "persistence": 0.88,
            "climatology": None,
        },
        {
            "variable": "air",
            "lead_hours": 24,
            "metric": "acc",
            "model": 0.79,
            "persistence": 0.81,
            "climatology": None,
        },
    ],
}


def write_initial_states(path: Path) -> Path:
    """Eight 6-hourly states on the tiny grid as a user has them: `air` in K, `z` on a level axis."""
    array = tiny_state_array(n_steps=8, start="2014-03-01", seed=5)
    air = array.sel(channel="air").drop_vars("channel").assign_attrs(units="K")
    z = array.sel(channel="z500").drop_vars("channel").expand_dims(level=[500.0], axis=1)
    dataset = xr.Dataset({"air": air, "z": z.assign_attrs(units="m")})
    dataset["level"].attrs["units"] = "hPa"
    dataset.to_netcdf(path)
    return path


@pytest.fixture(scope="module")
def dashboard_url(tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real app (tiny bundle with a skill card, synthetic initial states) on a loopback port."""
    from fno_forecast.bundle_metadata import update_skill_card
    from service.app import create_app
    from service.settings import ServiceSettings

    root = tmp_path_factory.mktemp("dashboard")
    bundle = Path(shutil.copytree(tiny_bundle, root / "tiny"))
    update_skill_card(bundle, SKILL_CARD)
    settings = ServiceSettings.from_overrides(
        models=[str(bundle)],
        data=str(write_initial_states(root / "states.nc")),
        store_dir=str(root / "store"),
        workers=1,
    )
    with live_server(create_app(settings)) as url:
        yield url


def wait_for(page: Any, script: str, *, timeout_s: float = 60.0, what: str) -> Any:
    """Poll `page.evaluate(script)` until truthy. (The page's CSP forbids eval, which wait_for_function uses.)"""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = page.evaluate(script)
        if value:
            return value
        page.wait_for_timeout(100)
    alert = page.evaluate("document.getElementById('alert').textContent")
    raise AssertionError(f"timed out waiting for {what}; the page says: {alert!r}")


def expected_click(headers: dict[str, str], *, natural: tuple[int, int], frac: tuple[float, float]) -> tuple:
    """Latitude/longitude of a click at fractions `frac` of the image, from the map's documented geometry.

    `X-Map-Extent: lon_min,lon_max,lat_min,lat_max` and `X-Plot-Box: left,top,right,bottom` (image pixels);
    without them the plot fills the image and spans the model's grid.
    """
    extent = headers.get("x-map-extent")
    box = headers.get("x-plot-box")
    lon0, lon1, lat0, lat1 = (
        [float(v) for v in extent.split(",")]
        if extent
        else [TINY_LON.min(), TINY_LON.max(), TINY_LAT.min(), TINY_LAT.max()]
    )
    left, top, right, bottom = [float(v) for v in box.split(",")] if box else [0, 0, *natural]
    fx = (frac[0] * natural[0] - left) / (right - left)
    fy = (frac[1] * natural[1] - top) / (bottom - top)
    return lat1 - fy * (lat1 - lat0), lon0 + fx * (lon1 - lon0)


def save_screenshot(page: Any, tmp_path: Path) -> Path:
    path = tmp_path / "dashboard.png"
    page.screenshot(path=str(path), full_page=True)
    target = os.environ.get("FNO_SCREENSHOT_DIR")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / path.name)
    print(f"dashboard screenshot: {path}" + (f" (and {target}/{path.name})" if target else ""))
    return path


@pytest.mark.slow
def test_dashboard_in_a_browser(browser: Any, dashboard_url: str, tmp_path: Path) -> None:
    import httpx

    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    problems: list[str] = []
    page.on(
        "console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None
    )
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    failed: list[tuple[str, str | None]] = []
    page.on("requestfailed", lambda r: failed.append((r.url, r.failure)))
    exchanges: list[tuple[str, int, dict[str, str], dict[str, str]]] = []
    page.on("response", lambda r: exchanges.append((r.url, r.status, r.request.headers, r.headers)))

    def last(match: Callable[[str], bool]) -> tuple[str, int, dict[str, str], dict[str, str]]:
        return [x for x in exchanges if match(x[0])][-1]

    page.goto(f"{dashboard_url}/?hours={HOURS}&poll={POLL_S}")
    wait_for(page, "document.getElementById('map').naturalWidth > 0", what="the map image")
    assert page.text_content("#model-name") == "tiny"
    assert page.text_content("#run") == "2014-03-02 18Z"  # the latest of the eight initial states

    # A click on the map: latitude/longitude from the map's geometry, then the chart of that point.
    map_url, status, _, map_headers = last(lambda u: "/map.png" in u)
    assert status == 200 and map_headers["content-type"] == "image/png"
    natural = tuple(
        page.evaluate(
            "[document.getElementById('map').naturalWidth, document.getElementById('map').naturalHeight]"
        )
    )
    centre = page.input_value("#lat")
    frac = (0.4, 0.45)
    box = page.locator("#map").bounding_box()
    page.mouse.click(box["x"] + frac[0] * box["width"], box["y"] + frac[1] * box["height"])
    lat, lon = expected_click(map_headers, natural=natural, frac=frac)
    assert "x-plot-box" in map_headers and "x-map-extent" in map_headers
    wait_for(page, f"document.getElementById('lat').value !== '{centre}'", what="the clicked latitude")
    # Within a displayed pixel or so (mouse positions are whole CSS pixels); the grid step is 2.5 degrees.
    assert float(page.input_value("#lat")) == pytest.approx(lat, abs=0.1)
    assert float(page.input_value("#lon")) == pytest.approx(lon, abs=0.1)

    # The point request of the click may still be in flight when the form shows the new latitude.
    def clicked_request() -> bool:
        urls = [x[0] for x in exchanges if "/v1/forecast?" in x[0]]
        return bool(urls) and abs(float(parse_qs(urlparse(urls[-1]).query)["latitude"][0]) - lat) < 0.1

    deadline = time.monotonic() + 30
    while not clicked_request() and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    point_url, status, _, _ = last(lambda u: "/v1/forecast?" in u)
    assert status == 200
    clicked = parse_qs(urlparse(point_url).query)
    assert float(clicked["latitude"][0]) == pytest.approx(lat, abs=0.1)
    assert clicked["hourly"] == ["air"] and clicked["forecast_hours"] == [str(HOURS)]
    api = httpx.get(point_url).json()
    plotted = "window.FnoChart.plotted(document.getElementById('chart'))"
    wait_for(
        page,
        f"({plotted} || {{values: []}}).values.length === {len(api['hourly']['time'])}",
        what="one chart point per forecast step",
    )
    chart = page.evaluate(plotted)
    assert api["hourly_units"]["air"] == "K"
    np.testing.assert_allclose(chart["values"], np.asarray(api["hourly"]["air"]) - 273.15, atol=1e-4)  # °C
    valid = np.array(api["hourly"]["time"], dtype="datetime64[s]").astype(np.int64)
    np.testing.assert_array_equal(chart["times"], valid)
    assert chart["label"] == "air (°C)" and "air (°C)" in page.text_content("#chart")  # units in the legend
    assert page.locator("#chart canvas").count() == 1
    assert page.is_visible("#marker")
    assert parse_qs(urlparse(map_url).query)["temperature_unit"] == ["celsius"]

    # The units button: the model's own kelvin, chart and map, and back.
    assert page.text_content("#units") == "°C" and page.get_attribute("#units", "aria-pressed") == "false"
    page.click("#units")
    wait_for(page, f"{plotted}.label === 'air (K)'", what="the chart in kelvin")
    np.testing.assert_allclose(page.evaluate(plotted)["values"], api["hourly"]["air"], rtol=1e-6)
    assert page.text_content("#units") == "K" and page.get_attribute("#units", "aria-pressed") == "true"
    wait_for(
        page,
        "[...performance.getEntriesByType('resource')].some(e => e.name.includes('temperature_unit=native'))",
        what="the map in kelvin",
    )
    page.click("#units")
    wait_for(page, f"{plotted}.label === 'air (°C)'", what="the chart in °C again")

    # Coastlines and borders: the API's Natural Earth lines, laid over the map by its documented geometry.
    outlines = httpx.get(f"{dashboard_url}/v1/models/tiny/basemap").json()["lines"]
    wait_for(
        page,
        f"document.querySelectorAll('#coastlines polyline').length === {len(outlines)}",
        what="the coastline layer",
    )
    first = page.eval_on_selector("#coastlines polyline", "p => p.getAttribute('points')").split()[0]
    left, top, right, bottom = (float(v) for v in map_headers["x-plot-box"].split(","))
    lon0, lon1, lat0, lat1 = (float(v) for v in map_headers["x-map-extent"].split(","))
    lon, lat = outlines[0][0]
    expected = (
        left + (lon - lon0) / (lon1 - lon0) * (right - left),
        top + (lat1 - lat) / (lat1 - lat0) * (bottom - top),
    )
    assert [float(v) for v in first.split(",")] == pytest.approx(expected, abs=0.06)
    layer, image = page.locator("#coastlines").bounding_box(), page.locator("#map").bounding_box()
    assert layer == pytest.approx(image, abs=1)  # exactly over the image
    assert page.get_attribute("#coastlines", "viewBox") == f"0 0 {natural[0]} {natural[1]}"

    # The slider picks another lead time: a new map for that lead.
    page.eval_on_selector("#lead", "el => { el.value = '42'; el.dispatchEvent(new Event('input')); }")
    wait_for(
        page,
        "[...performance.getEntriesByType('resource')].some(e => e.name.includes('lead_hours=42'))",
        what="the map at +42 h",
    )
    assert page.text_content("#lead-label").startswith("+42 h")
    assert last(lambda u: "lead_hours=42" in u)[1] == 200

    # The form: a typed location gives that point's chart.
    page.fill("#lat", "40")
    page.fill("#lon", "-115")
    page.click("#point-form button")
    wait_for(
        page, "document.getElementById('point-info').textContent.includes('40.00°N')", what="the typed point"
    )
    assert "245.00°E" in page.text_content("#point-info")

    # The skill card: the bundle's numbers, best of model and baselines highlighted.
    cells = page.eval_on_selector_all("table.skill-table tbody td", "tds => tds.map(td => td.textContent)")
    assert cells[:6] == ["0.81", "1.12", "2.50", "0.930", "0.880", "–"]
    best = page.eval_on_selector_all("td.best", "tds => tds.map(td => td.textContent)")
    assert best == ["0.81", "0.930", "1.61", "0.810"]

    # The live scorecard beside it: no run verified yet, so the skill card's RMSE (dashed) alone.
    scorecard = "window.FnoScorecard.plotted(document.getElementById('scorecard'))"
    wait_for(page, scorecard, what="the scorecard plot")
    plot = page.evaluate(scorecard)
    assert plot["leads"] == [6, 24] and plot["label"] == "RMSE (°C)"
    assert plot["series"] == {
        "skill card model": [0.81, 1.73],
        "skill card persistence": [1.12, 1.61],
        "skill card climatology": [2.5, 2.5],
    }
    assert "No run of air has been verified yet" in page.text_content("#scorecard-summary")
    assert page.locator("#scorecard canvas").count() == 1

    # Another variable: a map of it, and the chart of it with its units.
    page.select_option("#variable", "z500")
    wait_for(
        page,
        "[...performance.getEntriesByType('resource')].some(e => e.name.includes('variable=z500'))",
        what="the z500 map",
    )
    wait_for(page, "document.getElementById('chart').textContent.includes('z500 (m)')", what="the z500 chart")
    assert page.is_disabled("#units")  # metres have no other unit to offer
    assert sum("/v1/forecasts" in u and "/v1/forecasts/" not in u for u, *_ in exchanges) == 1  # one POST

    # Polling: the page re-asks its point with If-None-Match and the service answers 304.
    page.wait_for_timeout(1000 * (POLL_S + 1))
    polls = [x for x in exchanges if "/v1/forecast?" in x[0] and "if-none-match" in x[2]]
    assert polls and all(x[1] == 304 for x in polls), polls
    url, _, request_headers, _ = polls[-1]
    assert "hourly=z500" in url and "latitude=40.0000" in url
    first = [x for x in exchanges if x[0] == url and x[1] == 200]
    assert len(first) == 1 and request_headers["if-none-match"] == first[0][3]["etag"]
    assert "no new run" in page.text_content("#poll-status")

    save_screenshot(page, tmp_path)
    outside = [u for u, *_ in exchanges if not u.startswith((dashboard_url, "blob:", "data:"))]
    assert outside == []
    assert problems == []
    # Chromium ends a fetch answered without a body (204, 304) with ERR_ABORTED although the page's fetch
    # resolves normally (microsoft/playwright#32752); any other failure is real.
    not_modified = {u for u, status, *_ in exchanges if status == 304}
    assert [(u, why) for u, why in failed if not (u in not_modified and why == "net::ERR_ABORTED")] == []

    # A location outside the model's domain: the service's reason, shown on the page.
    page.fill("#lat", "10")
    page.click("#point-form button")
    alert = wait_for(page, "document.getElementById('alert').textContent", what="the error message")
    assert "outside the model domain" in alert and "32.5..50" in alert
    page.close()


GEOMETRY_CHECKS = """() => {
  const G = window.FnoMapGeometry;
  const headers = new Headers({"X-Map-Extent": "228.75,258.75,31.25,51.25", "X-Plot-Box": "80,40,480,360"});
  const g = G.fromHeaders(headers, [230, 257.5, 32.5, 50]);
  const img = {naturalWidth: 700, naturalHeight: 420, clientWidth: 350, clientHeight: 210};
  const fallback = G.fromHeaders(new Headers({"X-Plot-Box": "1,2,3"}), [230, 257.5, 32.5, 50]);
  return {
    documented: g.documented,
    centre: G.toLatLon(g, img, 140, 100),
    corner: G.toLatLon(g, img, 40, 20),
    outside: G.toLatLon(g, img, 20, 100),
    pixel: G.toPixel(g, img, {latitude: 41.25, longitude: 243.75}),
    west: G.toPixel(g, img, {latitude: 41.25, longitude: -116.25}),
    away: G.toPixel(g, img, {latitude: 60, longitude: 243.75}),
    fallback: [fallback.documented, fallback.box, fallback.extent],
    full: G.toLatLon(fallback, img, 175, 105),
  };
}"""


def test_page_scripts_compute_geometry_and_best_scores(browser: Any, dashboard_url: str) -> None:
    """The page's own functions, run in the browser: map pixels <-> degrees, best of a score row."""
    page = browser.new_page()
    page.goto(f"{dashboard_url}/?hours={HOURS}")
    got = page.evaluate(GEOMETRY_CHECKS)
    assert got["documented"] is True
    # Box 400 x 320 image pixels over 30 x 20 degrees; the image is shown at half size.
    assert got["centre"] == pytest.approx({"latitude": 41.25, "longitude": 243.75})
    assert got["corner"] == pytest.approx({"latitude": 51.25, "longitude": 228.75})
    assert got["outside"] is None
    assert got["pixel"] == pytest.approx({"x": 140, "y": 100})
    assert got["west"] == got["pixel"]  # -116.25 and 243.75 are the same meridian
    assert got["away"] is None
    assert got["fallback"] == [False, None, [230, 257.5, 32.5, 50]]
    assert got["full"] == pytest.approx({"latitude": 41.25, "longitude": 243.75})
    best = page.evaluate("""() => [
      window.FnoSkill.best("rmse", {model: 1.2, persistence: 1.1, climatology: 2.0}),
      window.FnoSkill.best("acc", {model: 0.9, persistence: 0.95, climatology: null}),
      window.FnoSkill.best("bias", {model: -0.1, persistence: 0.3, climatology: 0.2}),
      window.FnoSkill.best("rmse", {model: null, persistence: null, climatology: null}),
    ]""")
    assert best == ["persistence", "persistence", "model", None]
    page.close()
