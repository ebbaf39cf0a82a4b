"""Every command the README shows is run here, so the docs cannot rot.

The README's ```bash blocks are run as written, with three substitutions a test needs: the data path points at
the real data folder, the port is a free one, and the user's own files are synthetic ones written here.
`make test` itself is what CI runs (checked below, not run recursively).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"


# The README's commands train and evaluate for real: on an idle 2-core machine they take a few minutes, on a
# busy one several times that. The limit only catches a hang, so it is far above either.
HANG_GUARD_S = 1800.0


def bash_blocks() -> list[str]:
    return re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.S)


def block_with(text: str) -> str:
    found = [b for b in bash_blocks() if text in b]
    assert len(found) == 1, f"README has {len(found)} bash blocks with {text!r}"
    return found[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_script(script: str, *, cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    """Run a README block with bash; a server it leaves in the background is stopped afterwards.

    Output goes to files, not pipes: a background server holding a pipe would block once it fills.
    """
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
        try:
            returncode = process.wait(timeout=timeout)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)  # a server the script left running
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(process.args, returncode, out.read(), err.read())


def test_quick_start_is_two_make_commands_and_ci_runs_the_test_one() -> None:
    quick = bash_blocks()[0]
    commands = [line.split("#")[0].strip() for line in quick.strip().splitlines()]
    assert commands == ["make serve", "make test"]
    assert "make test" in (REPO / ".ci" / "run").read_text()


@pytest.mark.slow
def test_make_serve_answers_a_real_point_forecast() -> None:
    port = free_port()
    process = subprocess.Popen(
        ["make", "serve", f"PORT={port}"], cwd=REPO, start_new_session=True, stdout=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}/v1/forecast?latitude=40&longitude=-100&hourly=air"
    try:
        body = None
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and body is None:
            try:
                with urllib.request.urlopen(url, timeout=60) as response:
                    body = response.read().decode()
            except OSError:
                time.sleep(1)
        assert body is not None, "make serve did not answer within 240 s"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    answer = json.loads(body)
    assert (
        answer["hourly_units"]["air"] == "degK" and len(answer["hourly"]["air"]) == 7 * 24
    )  # 7 days, hourly
    assert all(200.0 < v < 330.0 for v in answer["hourly"]["air"])


@pytest.mark.slow
def test_tour_runs_as_written(ncep_nc: Path, tmp_path: Path) -> None:
    tour = block_with("fno-forecast inspect $DATA")
    script = re.sub(r"^DATA=.*$", f"DATA={ncep_nc}", tour, flags=re.M)
    script = script.replace("runs/tour", str(tmp_path / "tour"))
    result = run_script(script, cwd=REPO, timeout=HANG_GUARD_S)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "tour" / "model" / "model.json").is_file()
    assert sorted(p.suffix for p in (tmp_path / "tour" / "plots").iterdir())[0] == ".png"
    with xr.open_dataset(tmp_path / "tour" / "forecast.nc") as forecast:
        assert forecast.sizes["lead_time"] == 40 and forecast["air"].attrs["units"] == "degK"
    assert "air" in result.stdout and "rmse" in result.stdout.lower()


@pytest.mark.slow
def test_serve_and_curl_as_written(tmp_path: Path) -> None:
    port = free_port()
    script = block_with("forecast_days=7").replace("8000", str(port))
    result = run_script(script, cwd=tmp_path, timeout=HANG_GUARD_S)
    assert result.returncode == 0, result.stderr[-2000:]
    assert '"hourly_units"' in result.stdout and '"air"' in result.stdout


@pytest.mark.slow
def test_replay_demo_as_written(tmp_path: Path) -> None:
    port = free_port()
    script = (
        block_with("--replay bundled")
        .replace("8001", str(port))
        .replace("--replay-every 10s", "--replay-every 1s")
    )
    script = script.replace("sleep 30", "sleep 4").replace("--max-time 25", "--max-time 6")
    result = run_script(script, cwd=tmp_path, timeout=HANG_GUARD_S)
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert '"provenance":"replay"' in out and '"status":"completed"' in out
    assert "event: run" in out and "event: verification" in out
    assert '"per_lead":[{"lead_hours":6.0' in out


def write_own_reanalysis(folder: Path) -> None:
    """Two daily NetCDF files of a smooth travelling wave with a seasonal cycle, on a small global grid."""
    folder.mkdir()
    lat = np.linspace(80.0, -80.0, 9)
    lon = np.arange(0.0, 360.0, 22.5)
    for name, start, end in (
        ("2019.nc", "2019-01-01", "2019-12-31"),
        ("2020.nc", "2020-01-01", "2020-04-30"),
    ):
        time_ = pd.date_range(start, end, freq="D")
        days = (time_ - pd.Timestamp("2019-01-01")).days.values[:, None, None]
        season = 10.0 * np.cos(2 * np.pi * days / 365.25)
        wave = (
            5.0
            * np.sin(np.radians(lon)[None, None, :] * 2 - days / 3.0)
            * np.cos(np.radians(lat))[None, :, None]
        )
        temp = 280.0 + season + wave + 20.0 * np.cos(np.radians(lat))[None, :, None]
        xr.Dataset(
            {"t2m": (("time", "latitude", "longitude"), temp.astype(np.float32), {"units": "K"})},
            coords={"time": time_, "latitude": lat, "longitude": lon},
        ).to_netcdf(folder / name)


@pytest.mark.slow
def test_retraining_on_your_own_files_as_written(tmp_path: Path) -> None:
    write_own_reanalysis(tmp_path / "my_reanalysis")
    (tmp_path / "latest_analysis.nc").symlink_to(tmp_path / "my_reanalysis" / "2020.nc")
    port = free_port()
    script = block_with("my_reanalysis").replace("fno-forecast serve", f"fno-forecast serve --port {port}")
    script = script.replace("--max-minutes 30", "--max-minutes 0.5")  # the plan fills its budget
    lines = script.strip().splitlines()
    assert lines[-1].startswith("fno-forecast serve")
    ready = f"curl -s --retry 60 --retry-connrefused --retry-delay 1 http://127.0.0.1:{port}/v1/models"
    script = "\n".join([*lines[:-1], lines[-1] + " &", ready])
    result = run_script(script, cwd=tmp_path, timeout=HANG_GUARD_S)
    assert result.returncode == 0, result.stderr[-3000:]
    assert '"t2m"' in result.stdout
    assert (tmp_path / "runs" / "mine" / "model" / "model.json").is_file()
