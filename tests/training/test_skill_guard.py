"""The skill guard: a model worse than persistence gets its verdict, in the bundle and on the terminal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from safetensors.torch import load_file, save_file

from fno_forecast.bundle import load_bundle
from fno_forecast.cli import main
from fno_forecast.skill_guard import SKILFUL, WORSE, guard_bundle, verdict_from_card
from tests.training.helpers import train_args, write_tiny_data


def _row(lead: int, model: float, persistence: float, climatology: float) -> dict:
    return {
        "variable": "t",
        "lead_hours": lead,
        "metric": "rmse",
        "model": model,
        "persistence": persistence,
        "climatology": climatology,
    }


def test_verdict_names_each_lead_lost_to_the_better_baseline() -> None:
    card = {
        "period": ["a", "b"],
        "scores": [_row(6, 1.0, 2.0, 3.0), _row(24, 2.5, 2.0, 3.0), _row(72, 2.9, 3.5, 2.8)],
    }
    verdict = verdict_from_card(card)
    assert verdict["status"] == WORSE
    assert [r["lead_hours"] for r in verdict["losses"]] == [24, 72]
    assert verdict_from_card({"scores": [_row(6, 1.0, 2.0, 3.0)]})["status"] == SKILFUL


@pytest.fixture(scope="module")
def broken_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trained tiny bundle whose output layer is then scaled up 1000-fold: far worse than persistence."""
    root = tmp_path_factory.mktemp("guard")
    data = write_tiny_data(root / "tiny.nc")
    assert main(train_args(data, root / "run")) == 0
    bundle = root / "run" / "model"
    weights = load_file(bundle / "weights.safetensors")
    last = [k for k in weights if k.startswith("projection") and k.endswith("weight")][-1]
    weights[last] = weights[last] * 0 + 1000.0
    save_file(weights, bundle / "weights.safetensors")
    return bundle


def test_a_model_worse_than_persistence_gets_its_verdict(
    broken_bundle: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    verdict = guard_bundle(broken_bundle)
    assert verdict["status"] == WORSE
    assert {r["lead_hours"] for r in verdict["losses"]} == {6, 12}
    assert all(r["model"] > r["persistence"] for r in verdict["losses"])
    card = load_bundle(broken_bundle).skill_card
    assert card["verdict"] == verdict
    assert main(["info", str(broken_bundle)]) == 0
    assert "WARNING: the model loses to a baseline" in capsys.readouterr().out


def test_the_guard_scores_in_the_batches_training_validated_with(
    broken_bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a big grid a batch of 32 rollouts took the check past its memory budget: the guard uses the
    validation batch that the training's memory budget chose."""
    from fno_forecast.evaluation import scoring

    batches: list[int] = []
    evaluate = scoring.evaluate_model

    def recorded(*args: Any, **kwargs: Any) -> Any:
        batches.append(kwargs["batch_size"])
        return evaluate(*args, **kwargs)

    monkeypatch.setattr(scoring, "evaluate_model", recorded)
    guard_bundle(broken_bundle)
    assert batches == [load_bundle(broken_bundle).metadata["training"]["config"]["val_batch_size"]]


def test_the_guard_scores_the_inits_training_validated(broken_bundle: Path, tmp_path: Path) -> None:
    """A derived `val_init_stride` thins the validation on a big grid; the guard thins alike (every
    validation init of a 121 x 240 season would take hours on a CPU)."""
    import json
    import shutil

    every = guard_bundle(broken_bundle)
    full = load_bundle(broken_bundle).skill_card
    copy = tmp_path / "model"
    shutil.copytree(broken_bundle, copy)
    metadata = json.loads((copy / "model.json").read_text())
    metadata["training"]["config"]["val_init_stride"] = 2
    (copy / "model.json").write_text(json.dumps(metadata))
    thinned = guard_bundle(copy)
    card = load_bundle(copy).skill_card
    assert full["protocol"]["init_stride"] == 1 and card["protocol"]["init_stride"] == 2
    assert card["inits"] == (full["inits"] + 1) // 2
    assert thinned["status"] == every["status"] == WORSE
