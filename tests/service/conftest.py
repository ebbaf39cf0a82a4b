"""Service test set-up: the tiny bundle served with synthetic initial states, through TestClient."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import xarray as xr
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from service.app import create_app
from service.deps import get_forecast_function
from service.engine import library_forecast
from service.settings import ServiceSettings
from tests.fixtures.bundle import write_initial_states

INIT_STEPS = 6  # 2013-01-01T00 .. 2013-01-02T06; the tiny model uses history, so runs from T06 on work


class CountingForecast:
    """The library forecast behind a gate: counts rollouts, and can hold them until released."""

    def __init__(self) -> None:
        self.calls = 0
        self.gate = threading.Event()
        self.gate.set()
        self.started = threading.Event()
        self._lock = threading.Lock()

    async def dependency(self) -> CountingForecast:
        """Stands in for `service.deps.get_forecast_function`."""
        return self

    def __call__(
        self, bundle: Any, initial_state: xr.Dataset, lead_hours: float, **kwargs: Any
    ) -> xr.Dataset:
        with self._lock:
            self.calls += 1
        self.started.set()
        if not self.gate.wait(timeout=30):
            raise TimeoutError("test gate never opened")
        return library_forecast(bundle, initial_state, lead_hours, **kwargs)


def metric(exposition: str, name: str, **labels: str) -> float:
    """The value of one sample of a Prometheus text exposition, read with prometheus_client's parser."""
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    raise KeyError(f"no sample {name}{labels} in the exposition")


@pytest.fixture(scope="session")
def initial_states_nc(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_initial_states(tmp_path_factory.mktemp("init") / "init.nc", n_steps=INIT_STEPS)


@pytest.fixture()
def service_settings(tmp_path: Path, tiny_bundle: Path, initial_states_nc: Path) -> ServiceSettings:
    return ServiceSettings(
        models=[tiny_bundle],
        data=initial_states_nc,
        store_dir=tmp_path / "store",
        models_dir=tiny_bundle.parent,
        workers=2,
        max_queue=4,
    )


@pytest.fixture()
def counting() -> CountingForecast:
    return CountingForecast()


def make_client(settings: ServiceSettings, counting: CountingForecast) -> TestClient:
    app = create_app(settings)
    app.dependency_overrides[get_forecast_function] = counting.dependency
    return TestClient(app)


@pytest.fixture()
def client(service_settings: ServiceSettings, counting: CountingForecast) -> Iterator[TestClient]:
    with make_client(service_settings, counting) as test_client:
        yield test_client
    counting.gate.set()


BUCKET = "fno-store"


def s3_options(endpoint: str) -> dict[str, Any]:
    """s3fs options for the test server; each caller gets its own client, as separate processes would."""
    return {"key": "testing", "secret": "testing", "endpoint_url": endpoint, "skip_instance_cache": True}


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """An S3-compatible server (moto) on 127.0.0.1, a free port, with the empty bucket `BUCKET`."""
    moto_server = pytest.importorskip("moto.server", reason="moto[server] (the dev extra) runs the S3 server")
    s3fs = pytest.importorskip("s3fs", reason="s3fs (the cloud extra) writes s3:// stores")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    s3fs.S3FileSystem(**s3_options(endpoint)).mkdir(BUCKET)
    try:
        yield endpoint
    finally:
        server.stop()
