"""End-to-end training on a tiny synthetic grid: bundle, metrics, default split, info, budget."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from fno_forecast.bundle import load_bundle
from fno_forecast.cli import main
from fno_forecast.data.timeaxis import parse_period
from tests.training.helpers import TINY_OVERRIDES, train_args, write_tiny_data


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("train")
    data = write_tiny_data(root / "tiny.nc")
    out = root / "run"
    assert main(train_args(data, out, "--set", "lr=0.01")) == 0
    return out


def test_training_writes_a_loadable_bundle(trained: Path) -> None:
    bundle = load_bundle(trained / "model")
    assert bundle.schema.channel_names == ("t500", "t850")
    training = bundle.metadata["training"]
    assert set(training["val_rmse"]) == {"6", "12"}
    assert all(np.isfinite(v) for lead in training["val_rmse"].values() for v in lead.values())
    card = bundle.metadata["skill_card"]  # the skill guard scored the validation period
    assert card["period"][0].startswith(training["val_period"].split("/")[0])
    assert {row["lead_hours"] for row in card["scores"]} == {6, 12}
    assert card["verdict"]["period"] == card["period"]
    assert card["verdict"]["status"] in ("skilful", "worse than a baseline")
    assert bundle.climatology.annual == 0 and bundle.climatology.diurnal == 1


def test_default_split_validates_on_the_last_15_percent(trained: Path) -> None:
    training = load_bundle(trained / "model").metadata["training"]
    train_start, train_end = parse_period(training["train_period"])
    val_start, val_end = parse_period(training["val_period"])
    assert train_end < val_start
    n_val = (val_end - val_start) / np.timedelta64(6, "h")
    n_all = (val_end - train_start) / np.timedelta64(6, "h")
    assert round(float(n_val) + 1) == round(0.15 * (float(n_all) + 1))


def test_metrics_lines_per_epoch_and_learning_lowers_loss(trained: Path) -> None:
    lines = [json.loads(line) for line in (trained / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [0, 1, 2, 3]  # epoch 0 scores the untrained prior
    assert [r["stage"] for r in lines] == [0, 1, 1, 2] and lines[3]["unrolled_steps"] == 2
    for record in lines[1:]:
        assert {"train_loss", "val_rmse", "lr", "samples_per_s", "elapsed_s"} <= set(record)
        assert record["samples_per_s"] > 0
    assert lines[2]["train_loss"] < lines[1]["train_loss"]


def test_the_bundle_holds_the_best_validation_weights(trained: Path) -> None:
    lines = [json.loads(line) for line in (trained / "metrics.jsonl").read_text().splitlines()]
    best = min(lines, key=lambda r: r["val_score"])
    training = load_bundle(trained / "model").metadata["training"]
    assert training["best_epoch"] == best["epoch"]
    assert training["val_rmse"] == best["val_rmse"]


def test_checkpoint_loads_without_unpickling(trained: Path) -> None:
    state = torch.load(trained / "checkpoint.pt", weights_only=True)
    assert state["progress"]["finished"] is True
    assert state["progress"]["epoch"] == 3


def test_info_prints_metadata(trained: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(trained / "model")]) == 0
    text = capsys.readouterr().out
    assert "channels   t500, t850" in text and "skill card 12 inits of 2013-01-21" in text
    assert "verdict: skilful" in text or "WARNING: the model loses to a baseline" in text
    assert main(["info", str(trained / "model"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["model"]["name"] == "fno"
    assert main(["info", str(trained)]) == 2


def test_budget_ends_cleanly_with_a_bundle(tmp_path: Path) -> None:
    """The budget is timed by a clock the test controls (one second per reading), not the machine's speed."""
    from fno_forecast.training.config import load_config, parse_override
    from fno_forecast.training.loop import train

    data = write_tiny_data(tmp_path / "tiny.nc")
    out = tmp_path / "run"
    overrides = dict(parse_override(item) for item in TINY_OVERRIDES)
    config = load_config(None, overrides={**overrides, "stage1_epochs": 50})
    readings = itertools.count()
    result = train(
        config,
        data_path=str(data),
        out_dir=out,
        max_minutes=0.5,
        quiet=True,
        clock=lambda: float(next(readings)),
    )
    assert result.stopped_by_budget
    bundle = load_bundle(out / "model")
    assert bundle.metadata["training"]["stopped_by_budget"] is True
    epochs = [json.loads(line)["epoch"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert 2 <= len(epochs) < 50
    assert epochs == list(range(len(epochs)))
    # The same clock readings end the same run at the same place.
    readings = itertools.count()
    again = train(
        config,
        data_path=str(data),
        out_dir=tmp_path / "again",
        max_minutes=0.5,
        quiet=True,
        clock=lambda: float(next(readings)),
    )
    assert again.progress.global_step == result.progress.global_step


def test_the_budget_counts_the_setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`max_minutes` is wall time from the start of `train`: a setup that takes 20 of the 30 seconds
    (reading a big store, say) leaves the training the other 10, not a fresh 30."""
    from fno_forecast.training import loop
    from fno_forecast.training.config import load_config, parse_override

    data = write_tiny_data(tmp_path / "tiny.nc")
    overrides = dict(parse_override(item) for item in TINY_OVERRIDES)
    config = load_config(None, overrides={**overrides, "stage1_epochs": 50})
    clock = {"now": 0.0}

    def tick() -> float:  # one second per reading
        clock["now"] += 1.0
        return clock["now"]

    def run(out: Path, setup_s: float) -> loop.TrainResult:
        clock["now"] = 0.0
        real = loop.load_training_data

        def slow_setup(*args: object, **kwargs: object) -> object:
            clock["now"] += setup_s
            return real(*args, **kwargs)  # type: ignore[arg-type]

        with monkeypatch.context() as patch:
            patch.setattr(loop, "load_training_data", slow_setup)
            return loop.train(
                config, data_path=str(data), out_dir=out, max_minutes=0.5, quiet=True, clock=tick
            )

    quick, slow = run(tmp_path / "quick", 0.0), run(tmp_path / "slow", 20.0)
    assert quick.stopped_by_budget and slow.stopped_by_budget
    assert 0 < slow.progress.global_step < quick.progress.global_step
    assert load_bundle(tmp_path / "slow" / "model").metadata["training"]["stopped_by_budget"] is True


def test_explicit_periods_and_bad_data_are_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_tiny_data(tmp_path / "tiny.nc")
    args = train_args(
        data,
        tmp_path / "run",
        "--train-period",
        "2013-01-01/2013-01-15",
        "--val-period",
        "2015-01-01/2015-02-01",
    )
    assert main(args) == 2
    assert "2015-01-01/2015-02-01" in capsys.readouterr().err
    assert main(train_args(tmp_path / "missing.nc", tmp_path / "run2")) == 2
    assert "missing.nc" in capsys.readouterr().err


def test_input_noise_perturbs_the_inputs_and_leaves_the_targets(tmp_path: Path) -> None:
    """`input_noise` adds Gaussian noise of that many one-step tendency stds to the state and the previous
    state the network is fed in training; the loss still compares with the clean targets."""
    from torch import nn

    from fno_forecast.errors import ConfigError
    from fno_forecast.training.config import load_config, parse_override
    from fno_forecast.training.loop import Trainer

    data = write_tiny_data(tmp_path / "tiny.nc")
    overrides = dict(parse_override(item) for item in TINY_OVERRIDES)
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []

    class Spy(nn.Module):
        def __init__(self, inner: nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, state, time_hours, previous, n_steps):  # noqa: ANN001, ANN201
            seen.append((state.detach().clone(), previous.detach().clone()))
            return self.inner(state, time_hours, previous, n_steps)

    losses = {}
    for noise in (0.0, 0.5):
        config = load_config(overrides={**overrides, "input_noise": noise})
        trainer = Trainer(config, data_path=str(data), out_dir=tmp_path / f"run{noise}", quiet=True)
        trainer.update.unroller = Spy(trainer.update.unroller)
        batch = trainer.windows.train(1).batch(list(range(8)))
        losses[noise] = trainer.update(batch, 1)
        state, previous = seen[-1]
        std = trainer.stepper.tendency_std.flatten()
        for fed, clean in ((state, batch["state"]), (previous, batch["previous"])):
            spread = (fed - clean).transpose(0, 1).flatten(1).std(dim=1)
            if noise == 0.0:
                assert torch.equal(fed, clean)
            else:
                torch.testing.assert_close(spread, noise * std, rtol=0.1, atol=0.0)
    assert losses[0.5] > losses[0.0]  # the same seeded start, fed noisy states
    with pytest.raises(ConfigError, match="input_noise"):
        load_config(overrides={"input_noise": -0.1})
