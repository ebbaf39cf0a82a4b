"""Exact resume after SIGKILL, and data-parallel training under torchrun (2 CPU processes, gloo)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from fno_forecast.cli import main
from tests.training.helpers import train_args, write_tiny_data

LONGER = ["--set", "stage1_epochs=3", "--set", "rollout_steps=[2, 3]", "--set", "checkpoint_every_steps=1"]


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}


def _global_step(out: Path) -> tuple[int, bool]:
    path = out / "checkpoint.pt"
    if not path.exists():
        return 0, False
    try:
        progress = torch.load(path, weights_only=True)["progress"]
    except (RuntimeError, EOFError):
        return 0, False
    return progress["global_step"], progress["finished"]


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_weights(tmp_path: Path) -> None:
    data = write_tiny_data(tmp_path / "tiny.nc")
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    assert main(train_args(data, straight, *LONGER)) == 0
    total = _global_step(straight)[0]
    assert total > 20

    command = [sys.executable, "-m", "fno_forecast", *train_args(data, killed, *LONGER)]
    process = subprocess.Popen(command, env=_env())
    target = total // 2
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        step, finished = _global_step(killed)
        if step >= target:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    process.wait(timeout=30)
    step, finished = _global_step(killed)
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert 0 < step < total and not finished

    assert main([*train_args(data, killed, *LONGER), "--resume"]) == 0
    a = torch.load(straight / "checkpoint.pt", weights_only=True)
    b = torch.load(killed / "checkpoint.pt", weights_only=True)
    assert a["progress"]["global_step"] == b["progress"]["global_step"] == total
    assert a["network"].keys() == b["network"].keys()
    assert all(torch.equal(a["network"][k], b["network"][k]) for k in a["network"])
    wa, wb = (
        load_file(straight / "model" / "weights.safetensors"),
        load_file(killed / "model" / "weights.safetensors"),
    )
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.mark.slow
def test_torchrun_two_cpu_processes(tmp_path: Path) -> None:
    data = write_tiny_data(tmp_path / "tiny.nc")
    out = tmp_path / "ddp"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        "-m",
        "fno_forecast",
        *train_args(data, out, "--set", "stage1_epochs=1", "--set", "rollout_steps=[2]"),
    ]
    result = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [0, 1, 2]  # rank 0 alone writes
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    single_rank_batches = state["progress"]["global_step"]
    solo = tmp_path / "solo"
    assert main(train_args(data, solo, "--set", "stage1_epochs=1", "--set", "rollout_steps=[2]")) == 0
    solo_steps = torch.load(solo / "checkpoint.pt", weights_only=True)["progress"]["global_step"]
    assert single_rank_batches < solo_steps  # the data is split over two ranks
    assert (out / "model" / "weights.safetensors").is_file()
