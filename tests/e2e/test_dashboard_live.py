"""The dashboard follows the forecast cycle in a browser: a new run announced on /v1/events becomes the page's
run without a reload, the run picker lists it, the live scorecard plots the verification the new analysis
brought, and picking an older run pins the page to that run."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import xarray as xr

from tests.e2e.conftest import live_server
from tests.e2e.test_dashboard import HOURS, wait_for, write_initial_states


@pytest.fixture()
def live_dashboard(tiny_bundle: Path, tmp_path: Path) -> Iterator[tuple[str, Any, xr.Dataset]]:
    """The app over a watched folder holding the first six of eight states; yields the URL, the app and
    the two states still to arrive."""
    from service.app import create_app
    from service.settings import ServiceSettings

    states = xr.open_dataset(write_initial_states(tmp_path / "states.nc")).load()
    folder = tmp_path / "incoming"
    folder.mkdir()
    states.isel(time=slice(0, 6)).to_netcdf(folder / "first.nc")
    settings = ServiceSettings.from_overrides(
        models=[str(tiny_bundle)], data=str(folder), store_dir=str(tmp_path / "store"), poll_interval_s=3600
    )
    app = create_app(settings)
    with live_server(app) as url:
        yield url, app, states.isel(time=slice(6, 8))


def test_the_page_follows_a_new_run_and_pins_a_picked_one(
    browser: Any, live_dashboard: tuple[str, Any, xr.Dataset]
) -> None:
    url, app, later = live_dashboard
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    points: list[str] = []
    page.on("request", lambda r: points.append(r.url) if "/v1/forecast?" in r.url else None)
    page.goto(f"{url}/?hours={HOURS}&poll=3600")
    wait_for(page, "document.getElementById('map').naturalWidth > 0", what="the map image")
    assert page.text_content("#run") == "2014-03-02 06Z"
    wait_for(page, "!document.getElementById('run-picker').disabled", what="the run picker")
    assert page.is_hidden("#provenance")  # live data, not a replay

    folder = app.state.services.folder.poller.data
    temp = folder / ".second.nc.tmp"
    later.isel(time=[0]).to_netcdf(temp)
    os.replace(temp, folder / "second.nc")
    assert app.state.services.folder.tick() == ["second.nc"]
    wait_for(page, "document.getElementById('run').textContent === '2014-03-02 12Z'", what="the new run")
    options = page.eval_on_selector_all("#run-picker option", "os => os.map(o => o.value)")
    assert options[:2] == ["", "2014-03-02T12:00"] and "2014-03-02T06:00" in options

    # The new analysis verifies the page's run at +6 h: the live scorecard plots what /v1/verification says.
    scorecard = "window.FnoScorecard.plotted(document.getElementById('scorecard'))"
    wait_for(page, f"({scorecard} || {{series: {{}}}}).series['live model']", what="the live scorecard")
    plot = page.evaluate(scorecard)
    services = app.state.services
    verified = services.live.verifier.scorecard(services.catalog.default_id, last=20)["per_lead"]
    assert verified and all(row["runs"] == 1 for row in verified)
    for row in verified:  # the plot's leads also hold the skill card's
        at = plot["leads"].index(row["lead_hours"])
        assert plot["series"]["live model"][at] == pytest.approx(row["rmse"]["model"]["air"])
        assert plot["series"]["live persistence"][at] == pytest.approx(row["rmse"]["persistence"]["air"])
    assert "1 verified run" in page.text_content("#scorecard-summary")

    before = len(points)
    page.select_option("#run-picker", "2014-03-02T06:00")
    wait_for(page, "document.getElementById('run').textContent === '2014-03-02 06Z'", what="the picked run")
    deadline = time.monotonic() + 30
    while len(points) == before and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    assert parse_qs(urlparse(points[-1]).query)["run"] == ["2014-03-02T06:00"]
    assert problems == []
    page.close()
