"""What the service must not give away: host paths, 500s on admin input, body parsing before the token,
and one strong ETag for two different bodies."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.problems import PathRedactor
from tests.service.conftest import make_client

TOKEN = {"Authorization": "Bearer s3cret"}
POINT = {"latitude": 40, "longitude": -120, "forecast_hours": 12, "hourly": "air"}


@pytest.fixture()
def host_root(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The folder every fixture file (bundle, initial states, store) lives under."""
    return str(tmp_path_factory.getbasetemp())


def test_redactor_keeps_paths_relative_to_the_models_folder_and_names_only_elsewhere() -> None:
    redact = PathRedactor(roots=(Path("/srv/models"),))
    assert redact("/srv/models/bad/model.json: not valid JSON") == "bad/model.json: not valid JSON"
    assert redact("cannot read /var/lib/x/weights.safetensors (truncated)") == (
        "cannot read weights.safetensors (truncated)"
    )
    assert redact("[Errno 36] File name too long: '/srv/other/aaa'") == "[Errno 36] File name too long: 'aaa'"
    assert (
        redact("units m/s and K/day at 6/24/72 h (lat/lon)") == "units m/s and K/day at 6/24/72 h (lat/lon)"
    )


def test_ready_and_the_503_download_name_no_host_path(
    service_settings, counting, tmp_path: Path, host_root: str
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the store folder should be")
    settings = service_settings.model_copy(update={"store_dir": blocker})
    with make_client(settings, counting) as client:
        ready = client.get("/ready")
        assert ready.status_code == 200 and ready.json()["store"]["writable"] is False
        assert "not-a-folder" in ready.json()["store"]["problem"] and host_root not in ready.text
        fid = client.post("/v1/forecasts", json={"forecast_hours": 12}).json()["id"]
        download = client.get(f"/v1/forecasts/{fid}/data")
        assert download.status_code == 503 and "not stored" in download.json()["reason"]
        assert host_root not in download.text


def test_model_card_names_data_files_without_their_folders(
    service_settings, counting, tmp_path: Path, tiny_bundle: Path, host_root: str
) -> None:
    bundle = shutil.copytree(tiny_bundle, tmp_path / "trained")
    metadata = json.loads((bundle / "model.json").read_text())
    metadata["training"]["data"] = {"paths": [f"{host_root}/data/air.nc", "../shared/data/z500.nc"]}
    metadata["skill_card"] = {"model": f"{host_root}/runs/model", "data": "../shared/a.nc, ../shared/b.nc"}
    (bundle / "model.json").write_text(json.dumps(metadata))
    settings = service_settings.model_copy(update={"models": [bundle]})
    with make_client(settings, counting) as client:
        card = client.get("/v1/models/trained")
        assert card.status_code == 200 and host_root not in card.text and "shared" not in card.text
        assert card.json()["initial_states"] == "init.nc"
        assert card.json()["training"]["data"]["paths"] == ["air.nc", "z500.nc"]
        assert card.json()["skill_card"] == {"model": "model", "data": "a.nc, b.nc"}


def test_a_bundle_that_fails_at_start_is_named_by_its_folder_only(
    service_settings, counting, tmp_path: Path, tiny_bundle: Path, host_root: str
) -> None:
    broken = tmp_path / "broken-bundle"
    shutil.copytree(tiny_bundle, broken)
    (broken / "model.json").unlink()
    settings = service_settings.model_copy(update={"models": [broken, tiny_bundle]})
    with make_client(settings, counting) as client:
        ready = client.get("/ready")
        (error,) = ready.json()["errors"]
        assert "broken-bundle" in error and "model.json" in error and host_root not in ready.text


@pytest.mark.parametrize("length", [255, 256, 5000])
def test_long_registration_paths_are_a_422_naming_the_path(
    service_settings, counting, tiny_bundle: Path, host_root: str, length: int
) -> None:
    settings = service_settings.model_copy(update={"admin_token": "s3cret"})
    with make_client(settings, counting) as client:
        response = client.post("/v1/models", json={"path": "a" * length}, headers=TOKEN)
        assert response.status_code == 422, response.text[:300]
        assert response.json()["parameter"] == "path" and host_root not in response.text


@pytest.mark.parametrize("body", [b"{not json", b'{"path": 5}', b"[]", b""])
def test_admin_token_is_checked_before_the_body(service_settings, counting, body: bytes) -> None:
    settings = service_settings.model_copy(update={"admin_token": "s3cret"})
    headers = {"Content-Type": "application/json"}
    with make_client(settings, counting) as client:
        anonymous = client.post("/v1/models", content=body, headers=headers)
        assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"] == "Bearer"
        assert "parameter" not in anonymous.json()
        wrong = client.post("/v1/models", content=body, headers={**headers, "Authorization": "Bearer x"})
        assert wrong.status_code == 401
        admin = client.post("/v1/models", content=body, headers={**headers, **TOKEN})
        assert admin.status_code == 422 and admin.json()["parameter"]


def test_point_etags_are_weak_and_two_renderings_of_one_meaning_share_them(client: TestClient) -> None:
    first = client.get("/v1/forecast", params=POINT)
    second = client.get("/v1/forecast", params={**POINT, "latitude": "40.0"})  # same meaning, new render
    assert first.status_code == second.status_code == 200
    assert first.headers["etag"].startswith('W/"') and first.headers["etag"] == second.headers["etag"]
    assert first.json()["hourly"] == second.json()["hourly"]
    for sent in (first.headers["etag"], first.headers["etag"].removeprefix("W/"), "*"):
        again = client.get("/v1/forecast", params=POINT, headers={"If-None-Match": sent})
        assert again.status_code == 304 and again.content == b"", sent


def test_strong_etags_are_hashes_of_the_bytes_sent(client: TestClient) -> None:
    fid = client.post("/v1/forecasts", json={"forecast_hours": 12}).json()["id"]
    for route in (f"/v1/forecasts/{fid}/data", f"/v1/forecasts/{fid}/map.png", "/static/app.js"):
        response = client.get(route)
        assert response.status_code == 200, route
        etag = response.headers["etag"]
        assert not etag.startswith("W/"), route
        digest = etag.strip('"')
        assert hashlib.sha256(response.content).hexdigest().startswith(digest), route


def test_a_failed_rollout_reports_its_error_without_host_paths(
    service_settings, counting, host_root: str
) -> None:
    from service.deps import get_forecast_function

    def failing(*args, **kwargs):
        raise OSError(f"cannot read {host_root}/data/init.nc: disk error")

    async def dependency():
        return failing

    app_client = make_client(service_settings, counting)
    app_client.app.dependency_overrides[get_forecast_function] = dependency
    with app_client as client:
        fid = client.post("/v1/forecasts", json={"forecast_hours": 6}).json()["id"]
        stream = client.get(f"/v1/forecasts/{fid}/stream")  # ends when the rollout has failed
        assert "init.nc" in stream.text and host_root not in stream.text
        status = client.get(f"/v1/forecasts/{fid}").json()
        assert status["status"] == "failed" and status["error"] == "cannot read init.nc: disk error"
