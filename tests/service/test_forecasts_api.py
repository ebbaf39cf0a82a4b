"""Gridded forecast resources: create, status, NetCDF/Zarr/PNG/NDJSON, admin routes, restart."""

from __future__ import annotations

import io
import json
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from fastapi.testclient import TestClient

from tests.service.conftest import make_client, metric

BBOX = {"south": 40.0, "west": -125.0, "north": 47.5, "east": -115.0}  # 235..245 E


def wait_completed(client: TestClient, fid: str) -> dict:
    for _ in range(200):
        body = client.get(f"/v1/forecasts/{fid}").json()
        if body["status"] in ("completed", "failed"):
            return body
        time.sleep(0.05)
    raise AssertionError(f"forecast {fid} did not finish: {body}")


def test_create_then_exists(client: TestClient) -> None:
    created = client.post("/v1/forecasts", json={"forecast_hours": 12, "variables": ["z500"], "bbox": BBOX})
    assert created.status_code == 202, created.text
    fid = created.json()["id"]
    assert created.headers["location"] == f"/v1/forecasts/{fid}"
    status = wait_completed(client, fid)
    assert status["status"] == "completed" and status["progress"] == {"steps_done": 2, "total_steps": 2}
    assert status["links"]["zarr"] == f"/v1/forecasts/{fid}/data?format=zarr"
    again = client.post("/v1/forecasts", json={"forecast_hours": 12, "variables": ["z500"], "bbox": BBOX})
    assert again.status_code == 200 and again.json()["id"] == fid
    assert client.get("/v1/forecasts/0123456789abcdef01234567").status_code == 404


def test_bad_bodies_are_422_naming_the_field(client: TestClient) -> None:
    cases = [
        ({"forecast_hours": 0}, "forecast_hours"),
        ({"variables": ["rain"]}, "variables"),
        ({"model": "gfs"}, "model"),
        ({"bbox": {"south": 10, "west": 0, "north": 20, "east": 10}}, "bbox"),
        ({"bbox": {"south": 50, "west": 0, "north": 20, "east": 10}}, "bbox"),
        ({"run": "2020-01-01T00:00"}, "run"),
    ]
    for body, parameter in cases:
        response = client.post("/v1/forecasts", json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["parameter"] == parameter


def test_downloads_map_and_stream(client: TestClient) -> None:
    fid = client.post(
        "/v1/forecasts", json={"forecast_hours": 18, "variables": ["z500"], "bbox": BBOX}
    ).json()["id"]
    lines = [json.loads(line) for line in client.get(f"/v1/forecasts/{fid}/stream").text.splitlines()]
    assert [line["lead_hours"] for line in lines] == [6.0, 12.0, 18.0]
    assert lines[0]["valid_time"] == "2013-01-02T12:00" and lines[0]["lon"] == [
        235.0,
        237.5,
        240.0,
        242.5,
        245.0,
    ]
    assert np.asarray(lines[0]["values"]["z500"]).shape == (4, 5)

    netcdf = client.get(f"/v1/forecasts/{fid}/data")
    assert netcdf.status_code == 200 and netcdf.content[:4] == b"\x89HDF"
    with xr.open_dataset(io.BytesIO(netcdf.content), engine="h5netcdf") as dataset:
        assert list(dataset.data_vars) == ["z"] and dataset.sizes["lead_time"] == 3
        assert dataset["lat"].values.tolist() == [47.5, 45.0, 42.5, 40.0]
        np.testing.assert_allclose(
            dataset["z"].sel(level=500.0).isel(lead_time=0).values, lines[0]["values"]["z500"], atol=1e-3
        )
    again = client.get(f"/v1/forecasts/{fid}/data", headers={"If-None-Match": netcdf.headers["etag"]})
    assert again.status_code == 304

    zipped = client.get(f"/v1/forecasts/{fid}/data", params={"format": "zarr"})
    names = zipfile.ZipFile(io.BytesIO(zipped.content)).namelist()
    assert ".zmetadata" in names and any(n.startswith("z/") for n in names)
    assert client.get(f"/v1/forecasts/{fid}/data", params={"format": "grib"}).json()["parameter"] == "format"

    png = client.get(f"/v1/forecasts/{fid}/map.png", params={"variable": "z500", "lead_hours": 12})
    assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert (
        client.get(f"/v1/forecasts/{fid}/map.png", params={"lead_hours": 7}).json()["parameter"]
        == "lead_hours"
    )
    assert (
        client.get(f"/v1/forecasts/{fid}/map.png", params={"variable": "air"}).json()["parameter"]
        == "variable"
    )


def test_admin_routes_need_the_token(service_settings, counting, tiny_bundle: Path) -> None:
    settings = service_settings.model_copy(update={"admin_token": "s3cret"})
    with make_client(settings, counting) as client:
        fid = client.post("/v1/forecasts", json={"forecast_hours": 6}).json()["id"]
        wait_completed(client, fid)
        assert client.delete(f"/v1/forecasts/{fid}").status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert client.delete(f"/v1/forecasts/{fid}", headers=wrong).status_code == 401
        good = {"Authorization": "Bearer s3cret"}
        assert client.delete(f"/v1/forecasts/{fid}", headers=good).status_code == 204
        assert client.get(f"/v1/forecasts/{fid}").status_code == 404

        register = {"path": tiny_bundle.name, "id": "tiny-copy"}
        assert client.post("/v1/models", json=register).status_code == 401
        for hostile in ("../..", "/etc", "model/../../x"):
            response = client.post("/v1/models", json={"path": hostile}, headers=good)
            assert response.status_code == 422 and response.json()["parameter"] == "path"
        added = client.post("/v1/models", json=register, headers=good)
        assert added.status_code == 201, added.text
        assert "tiny-copy" in [m["id"] for m in client.get("/v1/models").json()["models"]]
        point = client.get(
            "/v1/forecast",
            params={"latitude": 40, "longitude": -120, "models": "tiny-copy", "forecast_hours": 6},
        )
        assert point.status_code == 200 and point.json()["model"] == "tiny-copy"


def test_admin_routes_are_off_without_a_token(service_settings, counting, tiny_bundle: Path) -> None:
    assert service_settings.admin_token is None
    with make_client(service_settings, counting) as client:
        fid = client.post("/v1/forecasts", json={"forecast_hours": 6}).json()["id"]
        wait_completed(client, fid)
        anyone = {"Authorization": "Bearer anything"}
        refused = client.delete(f"/v1/forecasts/{fid}", headers=anyone)
        assert refused.status_code == 403 and "FNO_ADMIN_TOKEN" in refused.json()["reason"]
        assert client.post("/v1/models", json={"path": tiny_bundle.name}, headers=anyone).status_code == 403
        assert client.get(f"/v1/forecasts/{fid}").json()["status"] == "completed"


def test_a_computed_forecast_survives_a_restart(service_settings, counting) -> None:
    with make_client(service_settings, counting) as client:
        fid = client.post("/v1/forecasts", json={"forecast_hours": 12}).json()["id"]
        wait_completed(client, fid)
        before = client.get(f"/v1/forecasts/{fid}/data").content
    assert counting.calls == 1
    with make_client(service_settings, counting) as client:
        status = client.get(f"/v1/forecasts/{fid}").json()
        assert status["status"] == "completed" and status["computed_at"]
        after = client.get(f"/v1/forecasts/{fid}/data").content
        assert client.post("/v1/forecasts", json={"forecast_hours": 12}).status_code == 200
        assert metric(client.get("/metrics").text, "fno_rollouts_total", how="store_load") == 1
    assert counting.calls == 1  # loaded from the store, not recomputed
    with (
        xr.open_dataset(io.BytesIO(before), engine="h5netcdf") as a,
        xr.open_dataset(io.BytesIO(after), engine="h5netcdf") as b,
    ):
        xr.testing.assert_equal(a["air"], b["air"])


def test_a_failed_rollout_is_reported_not_retried_on_every_poll(
    client: TestClient, counting, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fno_forecast.errors import ForecastError
    from tests.service import conftest

    def broken(*args, **kwargs):
        raise ForecastError("initial_state: the states are unusable")

    monkeypatch.setattr(conftest, "library_forecast", broken)
    created = client.post("/v1/forecasts", json={"forecast_hours": 6})
    assert created.status_code == 202
    status = wait_completed(client, created.json()["id"])
    assert status["status"] == "failed" and "unusable" in status["error"]
    assert client.get(f"/v1/forecasts/{created.json()['id']}").json()["status"] == "failed"
    assert counting.calls == 1
    stream = client.get(f"/v1/forecasts/{created.json()['id']}/stream").text.splitlines()
    assert json.loads(stream[-1])["error"] is True
