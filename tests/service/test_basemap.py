"""The dashboard's map layers from the API: Natural Earth outlines over a model's grid, maps in °C."""

from __future__ import annotations

import io

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image

from tests.fixtures.bundle import TINY_LAT, TINY_LON


def test_basemap_gives_natural_earth_outlines_over_the_grid(client: TestClient) -> None:
    model = client.get("/v1/models").json()["default"]
    body = client.get(f"/v1/models/{model}/basemap").json()
    assert "Natural Earth" in body["source"]
    lon_min, lon_max, lat_min, lat_max = body["extent"]
    assert (lon_min, lon_max) == (TINY_LON.min() - 1.25, TINY_LON.max() + 1.25)  # half a grid step beyond
    assert (lat_min, lat_max) == (TINY_LAT.min() - 1.25, TINY_LAT.max() + 1.25)
    points = np.concatenate([np.asarray(line) for line in body["lines"]])
    assert len(body["lines"]) > 5 and len(points) > 100
    assert points[:, 0].min() >= lon_min - 1e-6 and points[:, 0].max() <= lon_max + 1e-6  # the grid's 0..360
    assert points[:, 1].min() >= lat_min - 1e-6 and points[:, 1].max() <= lat_max + 1e-6
    # The Pacific coast of the United States (124.2 W at 42 N, Cape Blanco) and the 49th-parallel border.
    coast = points[(points[:, 1] > 41.5) & (points[:, 1] < 42.5)]
    assert np.abs(coast[:, 0] - (360 - 124.2)).min() < 0.3
    border = points[np.abs(points[:, 1] - 49.0) < 0.01]  # a straight line: its ends, at the clip edge too
    assert np.isclose(border[:, 0], lon_max, atol=1e-3).any()
    assert client.get("/v1/models/absent/basemap").status_code == 404


def test_maps_draw_kelvin_channels_in_celsius_on_request(client: TestClient) -> None:
    fid = client.post("/v1/forecasts", json={"forecast_hours": 6, "variables": ["air"]}).json()["id"]
    native = client.get(f"/v1/forecasts/{fid}/map.png", params={"variable": "air"})
    celsius = client.get(
        f"/v1/forecasts/{fid}/map.png", params={"variable": "air", "temperature_unit": "celsius"}
    )
    assert native.status_code == celsius.status_code == 200
    assert native.headers["x-map-extent"] == celsius.headers["x-map-extent"]  # same geometry
    # Same field, same colours: only the colour bar's tick labels and title differ.
    a = np.asarray(Image.open(io.BytesIO(native.content)).convert("RGB"), dtype=int)
    b = np.asarray(Image.open(io.BytesIO(celsius.content)).convert("RGB"), dtype=int)
    left, top, right, bottom = (int(float(v)) for v in native.headers["x-plot-box"].split(","))
    np.testing.assert_array_equal(
        a[top + 2 : bottom - 2, left + 2 : right - 2], b[top + 2 : bottom - 2, left + 2 : right - 2]
    )
    assert (a != b).any()
    bad = client.get(f"/v1/forecasts/{fid}/map.png", params={"temperature_unit": "fahrenheit"})
    assert bad.status_code == 422
