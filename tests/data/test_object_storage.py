"""Zarr stores read from object storage: a local S3-compatible server (moto) and a local HTTP server.

Both servers run on 127.0.0.1 on a free port, started by these tests; nothing else is reached.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from fno_forecast.bundle import load_bundle
from fno_forecast.cli import main
from fno_forecast.data.channels import open_channels
from fno_forecast.errors import DataError
from tests.fixtures.data import write_synthetic
from tests.training.helpers import train_args

moto_server = pytest.importorskip("moto.server", reason="moto[server] (the dev extra) runs the S3 server")
s3fs = pytest.importorskip("s3fs", reason="s3fs (the cloud extra) reads s3:// URLs")

REPO = Path(__file__).resolve().parents[2]
BUCKET = "fno-data"
KEYS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def local_zarr(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny training set of tests/training (t500, t850 on 8 x 16, 96 steps) as a Zarr v2 store."""
    return write_synthetic(
        tmp_path_factory.mktemp("local") / "tiny.zarr", fmt="zarr2", steps=96, variables=("t",)
    )


@pytest.fixture(scope="module")
def s3_endpoint(local_zarr: Path) -> Iterator[str]:
    """An S3-compatible server on 127.0.0.1 holding `s3://fno-data/tiny.zarr` (uploaded from disk)."""
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    fs = s3fs.S3FileSystem(key="testing", secret="testing", endpoint_url=endpoint, skip_instance_cache=True)
    fs.mkdir(BUCKET)
    fs.put(str(local_zarr), f"{BUCKET}/tiny.zarr", recursive=True)
    fs.pipe(f"{BUCKET}/notes/readme.txt", b"not a store")
    try:
        yield endpoint
    finally:
        server.stop()


def options(endpoint: str) -> dict[str, str]:
    return {"key": "testing", "secret": "testing", "endpoint_url": endpoint}


def test_s3_store_opens_with_storage_options_and_matches_the_local_copy(
    s3_endpoint: str, local_zarr: Path
) -> None:
    remote = open_channels(f"s3://{BUCKET}/tiny.zarr", storage_options=options(s3_endpoint))
    local = open_channels(local_zarr)
    assert remote.source_format == "zarr2" and remote.paths == (f"s3://{BUCKET}/tiny.zarr",)
    assert remote.schema.channel_names == ("t500", "t850") and remote.time.steps == 96
    np.testing.assert_array_equal(remote.array.values, local.array.values)


def test_s3_errors_name_the_url(s3_endpoint: str) -> None:
    with pytest.raises(DataError, match="no such store") as missing:
        open_channels(f"s3://{BUCKET}/absent.zarr", storage_options=options(s3_endpoint))
    assert missing.value.path == f"s3://{BUCKET}/absent.zarr"
    with pytest.raises(DataError, match="not a Zarr store"):
        open_channels(f"s3://{BUCKET}/notes", storage_options=options(s3_endpoint))


def test_inspect_reads_s3_with_fsspec_environment_variables(s3_endpoint: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "FSSPEC_"))}
    env |= {"FSSPEC_S3_KEY": "testing", "FSSPEC_S3_SECRET": "testing", "FSSPEC_S3_ENDPOINT_URL": s3_endpoint}
    env |= {"AWS_DEFAULT_REGION": "us-east-1", "NO_PROXY": "127.0.0.1", "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-m", "fno_forecast", "inspect", f"s3://{BUCKET}/tiny.zarr", "--json"],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=REPO,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["format"] == "zarr2" and doc["paths"] == [f"s3://{BUCKET}/tiny.zarr"]
    assert [c["name"] for c in doc["channels"]] == ["t500", "t850"] and doc["time"]["steps"] == 96
    assert doc["grid"]["global"] is True and doc["missing_values"]["total"] == 0


def test_train_reads_s3_with_aws_environment_variables(
    s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in (KEYS | {"AWS_ENDPOINT_URL": s3_endpoint}).items():
        monkeypatch.setenv(name, value)
    out = tmp_path / "run"
    assert main(train_args(f"s3://{BUCKET}/tiny.zarr", out)) == 0  # type: ignore[arg-type]
    bundle = load_bundle(out / "model")
    assert bundle.schema.channel_names == ("t500", "t850")
    assert bundle.metadata["training"]["data"] == {
        "paths": [f"s3://{BUCKET}/tiny.zarr"],
        "format": "zarr2",
        "time": bundle.metadata["training"]["data"]["time"],
    }
    assert bundle.metadata["training"]["data"]["time"]["steps"] == 96
    val = bundle.metadata["training"]["val_rmse"]
    assert set(val) == {"6", "12"} and all(np.isfinite(v) for lead in val.values() for v in lead.values())


@pytest.fixture
def http_root(local_zarr: Path) -> Iterator[str]:
    """A plain HTTP server on 127.0.0.1 serving the folder that holds `tiny.zarr`."""
    handler = functools.partial(QuietHandler, directory=str(local_zarr.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        thread.join()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass


def test_http_store_opens(http_root: str, local_zarr: Path) -> None:
    remote = open_channels(f"{http_root}/tiny.zarr")
    assert remote.schema.channel_names == ("t500", "t850")
    np.testing.assert_array_equal(remote.array.values, open_channels(local_zarr).array.values)
    with pytest.raises(DataError, match="no such store"):
        open_channels(f"{http_root}/absent.zarr")
