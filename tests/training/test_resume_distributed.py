"""Exact resume after SIGKILL, and data-parallel training under torchrun (2 CPU processes, gloo)."""

from __future__ import annotations

import json
import os
import random
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


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, int]:
    """An uninterrupted tiny run: (data file, output folder, total steps)."""
    root = tmp_path_factory.mktemp("resume")
    data = write_tiny_data(root / "tiny.nc")
    straight = root / "straight"
    assert main(train_args(data, straight, *LONGER)) == 0
    total = _global_step(straight)[0]
    assert total > 20
    return data, straight, total


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_killed_run_resumes_to_the_same_weights(
    straight_run: tuple[Path, Path, int], tmp_path: Path, seed: int
) -> None:
    """SIGKILL at a random step (one per seed), resume, and end with bit-identical weights."""
    data, straight, total = straight_run
    killed = tmp_path / "killed"
    command = [sys.executable, "-m", "fno_forecast", *train_args(data, killed, *LONGER)]
    process = subprocess.Popen(command, env=_env())
    target = random.Random(seed).randint(2, total - 2)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        step, finished = _global_step(killed)
        if step >= target:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.005)
    process.wait(timeout=30)
    step, finished = _global_step(killed)
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert 0 < step < total and not finished  # the checkpoint left by the kill loads: never half-written

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


def test_a_truncated_checkpoint_is_refused_in_one_line(
    straight_run: tuple[Path, Path, int], tmp_path: Path
) -> None:
    data, straight, _ = straight_run
    out = tmp_path / "broken"
    out.mkdir()
    raw = (straight / "checkpoint.pt").read_bytes()
    (out / "checkpoint.pt").write_bytes(raw[: len(raw) // 2])
    result = subprocess.run(
        [sys.executable, "-m", "fno_forecast", *train_args(data, out, *LONGER), "--resume"],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "checkpoint.pt: cannot resume from this checkpoint" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_resume_that_changes_a_set_key_is_refused_naming_it(
    straight_run: tuple[Path, Path, int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A resumed run keeps the config it started with: a `--set` to another value is an error that
    names the key and both values, not an override silently dropped; the same value resumes."""
    data, straight, total = straight_run
    out = tmp_path / "changed"
    out.mkdir()
    (out / "checkpoint.pt").write_bytes((straight / "checkpoint.pt").read_bytes())
    assert main([*train_args(data, out, *LONGER, "--set", "stage1_epochs=4"), "--resume"]) == 2
    error = capsys.readouterr().err.strip()
    assert "--resume keeps the config the run started with" in error and len(error.splitlines()) == 1
    assert "stage1_epochs = 4 (the run has 3)" in error and "checkpoint.pt" in error
    assert not (out / "model").exists()
    assert main([*train_args(data, out, *LONGER), "--resume"]) == 0  # finished: the bundle is rewritten
    assert _global_step(out) == (total, True) and (out / "model" / "model.json").exists()


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
