"""Model files from disk: bundles that lie, truncated or garbage weights, all refused with a clear 4xx."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.service.conftest import make_client

TOKEN = {"Authorization": "Bearer s3cret"}


def edit_metadata(edit: Callable[[dict], None]) -> Callable[[Path], None]:
    def apply(bundle: Path) -> None:
        metadata = json.loads((bundle / "model.json").read_text())
        edit(metadata)
        (bundle / "model.json").write_text(json.dumps(metadata))

    return apply


def truncate(name: str, keep: float) -> Callable[[Path], None]:
    def apply(bundle: Path) -> None:
        data = (bundle / name).read_bytes()
        (bundle / name).write_bytes(data[: int(len(data) * keep)])

    return apply


def overwrite(name: str, data: bytes) -> Callable[[Path], None]:
    return lambda bundle: (bundle / name).write_bytes(data)


def _set(path: tuple, value) -> Callable[[dict], None]:
    def edit(metadata: dict) -> None:
        node = metadata
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return edit


# name -> (how to break a copy of the tiny bundle, a word the refusal must contain)
BROKEN: dict[str, tuple[Callable[[Path], None], str]] = {
    "arrays-shape-lie": (edit_metadata(_set(("arrays", "mean"), [3])), "arrays.safetensors"),
    "grid-lie": (
        edit_metadata(_set(("schema", "grid", "lat"), [50.0, 47.5, 45.0, 42.5, 40.0, 37.5])),
        "arrays.safetensors",
    ),
    "extra-channel-lie": (
        edit_metadata(
            lambda m: m["schema"]["channels"].append(
                {"name": "q", "variable": "q", "level": None, "units": "1", "long_name": "humidity"}
            )
        ),
        "arrays.safetensors",
    ),
    "width-lie": (edit_metadata(_set(("model", "config", "hidden_channels"), 16)), "weights.safetensors"),
    "history-lie": (edit_metadata(_set(("stepper", "use_history"), False)), "weights.safetensors"),
    "truncated-weights": (truncate("weights.safetensors", 0.5), "weights"),
    "garbage-weights": (overwrite("weights.safetensors", b"\x00" * 64 + b"not safetensors" * 50), "weights"),
    "huge-header-weights": (
        overwrite("weights.safetensors", (2**62).to_bytes(8, "little") + b"{}"),
        "weights",
    ),
    "truncated-arrays": (truncate("arrays.safetensors", 0.3), "arrays"),
    "truncated-json": (truncate("model.json", 0.5), "model.json"),
    "no-weights": (lambda b: (b / "weights.safetensors").unlink(), "weights"),
    "not-a-bundle": (lambda b: (b / "model.json").unlink(), "model.json"),
    "pickle-instead": (overwrite("weights.safetensors", b"\x80\x04\x95cos\nsystem\n."), "weights"),
}


@pytest.fixture()
def models_dir(tmp_path: Path, tiny_bundle: Path) -> Path:
    root = tmp_path / "models"
    shutil.copytree(tiny_bundle, root / "good")
    for name, (breaker, _) in BROKEN.items():
        shutil.copytree(tiny_bundle, root / name)
        breaker(root / name)
    return root


def test_lying_or_corrupt_bundles_are_refused_on_registration(service_settings, counting, models_dir) -> None:
    settings = service_settings.model_copy(update={"admin_token": "s3cret", "models_dir": models_dir})
    with make_client(settings, counting) as client:
        for name, (_, word) in BROKEN.items():
            response = client.post("/v1/models", json={"path": name, "id": name}, headers=TOKEN)
            assert response.status_code == 422, (name, response.status_code, response.text[:300])
            reason = response.json()["reason"]
            assert word in reason and name in reason, (name, reason)
            assert "Traceback" not in reason
        served = [m["id"] for m in client.get("/v1/models").json()["models"]]
        assert not set(served) & set(BROKEN)
        good = client.post("/v1/models", json={"path": "good", "id": "good"}, headers=TOKEN)
        assert good.status_code == 201, good.text
        point = client.get(
            "/v1/forecast", params={"latitude": 40, "longitude": -120, "models": "good", "forecast_hours": 6}
        )
        assert point.status_code == 200 and point.json()["model"] == "good"


def test_a_corrupt_bundle_at_start_is_reported_and_the_others_serve(
    service_settings, counting, models_dir, caplog: pytest.LogCaptureFixture
) -> None:
    broken = [models_dir / "truncated-weights", models_dir / "width-lie"]
    settings = service_settings.model_copy(update={"models": [*broken, models_dir / "good"]})
    with make_client(settings, counting) as client:
        ready = client.get("/ready").json()
        assert ready["status"] == "ready" and ready["models"] == ["good"]
        assert len(ready["errors"]) == 2
        for path, error in zip(broken, ready["errors"], strict=True):
            assert path.name in error and str(path) not in error
    assert not [r for r in caplog.records if r.exc_info]  # reported in one line each, no traceback
