"""Request caps (413, 414, 1000 locations) and hostile path parameters: every answer a JSON 4xx, nothing leaks."""

from __future__ import annotations

import itertools
import select
import socket
from pathlib import Path

from fastapi.testclient import TestClient

from tests.service.conftest import make_client

TOKEN = {"Authorization": "Bearer s3cret"}

# Percent-encoded so that no client normalises them away before they reach the server.
HOSTILE_SEGMENTS = [
    "..%2F..%2Findex.sqlite",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "..%5C..%5Cindex.sqlite",
    "index.sqlite",
    "rollouts",
    "%00",
    "0123456789abcdef0123456%00",
    "x" * 4000,
]
FORECAST_ROUTES = [
    "/v1/forecasts/{}",
    "/v1/forecasts/{}/data",
    "/v1/forecasts/{}/map.png",
    "/v1/forecasts/{}/stream",
]


def assert_json_error(response, *statuses: int) -> dict:
    assert response.status_code in statuses, (response.request.url, response.status_code, response.text[:200])
    body = response.json()
    assert body["error"] is True and body["reason"].strip(), body
    return body


def coordinates(n: int) -> dict[str, str]:
    lats = ",".join(f"{35.0 + (i % 100) * 0.1:.1f}" for i in range(n))
    lons = ",".join(f"{-125.0 + (i // 100) * 0.5:.1f}" for i in range(n))
    return {"latitude": lats, "longitude": lons}


def test_thousand_locations_pass_and_one_more_is_refused(client: TestClient) -> None:
    ok = client.get("/v1/forecast", params={**coordinates(1000), "forecast_hours": 6, "hourly": "air"})
    assert ok.status_code == 200, ok.text[:300]
    assert len(ok.json()) == 1000 and len(ok.json()[-1]["hourly"]["air"]) == 6
    refused = client.get("/v1/forecast", params={**coordinates(1001), "forecast_hours": 6})
    body = assert_json_error(refused, 400)
    assert body["parameter"] == "latitude" and "1001" in body["reason"] and "1000" in body["reason"]


def test_long_query_is_414_and_big_bodies_413(client: TestClient, service_settings) -> None:
    long_query = client.get("/v1/forecast", params={"latitude": "4" * 40000, "longitude": "1"})
    assert assert_json_error(long_query, 414)["parameter"] == "query"
    limit = service_settings.max_body_bytes
    declared = client.post(
        "/v1/forecasts", content=b"{" + b" " * limit + b"}", headers={"Content-Type": "application/json"}
    )
    assert assert_json_error(declared, 413)["parameter"] == "body"

    def chunks():  # no Content-Length: counted as it arrives
        for _ in range(limit // 1024 + 2):
            yield b" " * 1024

    chunked = client.post("/v1/forecasts", content=chunks(), headers={"Content-Type": "application/json"})
    assert assert_json_error(chunked, 413)["parameter"] == "body"


def read_response(sock: socket.socket) -> bytes:
    """Head and body of one HTTP answer, which may arrive in several segments."""
    answer = b""
    while True:
        head, sep, body = answer.partition(b"\r\n\r\n")
        if sep:
            length = [
                int(line.split(b":")[1])
                for line in head.lower().split(b"\r\n")
                if line.startswith(b"content-length:")
            ]
            if length and len(body) >= length[0]:
                return answer
        try:
            part = sock.recv(65536)
        except ConnectionResetError:
            return answer
        if not part:
            return answer
        answer += part


def test_chunked_body_over_the_limit_on_a_real_socket(live_server) -> None:
    server = live_server()
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        head = (
            b"POST /v1/forecasts HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        )
        sock.sendall(head)
        chunk = b" " * 8192
        answer = b""
        for _ in range(40):  # up to 320 KiB, far beyond the 64 KiB default; stop once answered
            readable, _, _ = select.select([sock], [], [], 0.05)
            if readable:  # read the answer as soon as it comes, before the server resets the connection
                break
            sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        else:
            sock.sendall(b"0\r\n\r\n")
        answer = read_response(sock)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b'"parameter": "body"' in answer or b'"parameter":"body"' in answer


def test_unknown_routes_and_methods_answer_json(client: TestClient) -> None:
    assert "not found" in assert_json_error(client.get("/v1/nothing-here"), 404)["reason"].lower()
    body = assert_json_error(client.put("/v1/forecasts"), 405)
    assert "PUT" in body["reason"]


def test_hostile_path_parameters_never_reach_the_file_system(service_settings, counting) -> None:
    settings = service_settings.model_copy(update={"admin_token": "s3cret"})
    with make_client(settings, counting) as client:
        fid = client.post("/v1/forecasts", json={"forecast_hours": 6}).json()["id"]
        for segment, route in itertools.product(HOSTILE_SEGMENTS, FORECAST_ROUTES):
            response = client.get(route.format(segment))
            assert_json_error(response, 404, 422)
            assert b"SQLite format" not in response.content and b"root:" not in response.content
        for segment in HOSTILE_SEGMENTS:
            assert_json_error(client.delete(f"/v1/forecasts/{segment}", headers=TOKEN), 404, 422)
            assert_json_error(client.get(f"/v1/models/{segment}"), 404, 422)
            assert_json_error(client.get(f"/static/{segment}"), 404, 422)
        assert client.get(f"/v1/forecasts/{fid}").status_code == 200  # the real one is untouched


def test_registration_paths_outside_the_models_folder_are_refused(
    service_settings, counting, tmp_path: Path, tiny_bundle: Path
) -> None:
    models_dir = tmp_path / "models"
    models_dir.mkdir()
    (models_dir / "escape").symlink_to(tiny_bundle, target_is_directory=True)  # a link out of the folder
    settings = service_settings.model_copy(update={"admin_token": "s3cret", "models_dir": models_dir})
    hostile = [
        "../..",
        "..",
        "/etc",
        str(tiny_bundle),
        "escape",
        "escape/.",
        "./../" + tiny_bundle.parent.name,
        "a\x00b",
        "..\\..",
        "~",
        "",
    ]
    with make_client(settings, counting) as client:
        for path in hostile:
            response = client.post("/v1/models", json={"path": path}, headers=TOKEN)
            body = assert_json_error(response, 422)
            assert body["parameter"] == "path", (path, body)
        assert len(client.get("/v1/models").json()["models"]) == 1  # nothing was registered
