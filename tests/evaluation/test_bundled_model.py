"""The bundled default model: its skill card is what evaluating it gives, and it beats the baselines."""

from __future__ import annotations

import numpy as np
import pytest

from fno_forecast.bundle import default_bundle_path, load_bundle
from fno_forecast.evaluation.scoring import evaluate_model, open_for_bundle

VALIDATION = ("2014-07-01", "2014-09-30")
# Linear autoregression on 150 principal components, from the shared data notes (SOURCES.md).
LINEAR = {6.0: 1.35, 24.0: 1.95, 72.0: 2.58, 120.0: 2.66, 240.0: 2.64}


@pytest.fixture(scope="module")
def bundle():
    return load_bundle(default_bundle_path())


def _card_rmse(card: dict) -> dict[float, dict]:
    return {float(r["lead_hours"]): r for r in card["scores"] if r["metric"] == "rmse"}


def test_skill_card_covers_the_validation_period_and_beats_every_baseline(bundle) -> None:
    card = bundle.skill_card
    assert card is not None and tuple(card["period"]) == VALIDATION and card["inits"] == 368
    training = bundle.metadata["training"]
    assert training["train_period"].endswith("2014-06-30") and training["val_period"].startswith("2014-07-01")
    rmse = _card_rmse(card)
    assert sorted(rmse) == sorted(LINEAR)
    for lead, linear in LINEAR.items():
        row = rmse[lead]
        assert row["model"] < min(row["persistence"], row["climatology"], linear), lead
    acc72 = next(r for r in card["scores"] if r["metric"] == "acc" and float(r["lead_hours"]) == 72.0)
    assert acc72["model"] > acc72["persistence"]


@pytest.mark.slow
def test_skill_card_is_reproduced_on_the_validation_data(bundle, ncep_nc) -> None:
    array = open_for_bundle(bundle, [ncep_nc])
    # Short leads over every validation init reproduce the card exactly ...
    result = evaluate_model(bundle, array, period="/".join(VALIDATION), leads=(6, 24))
    card = _card_rmse(bundle.skill_card)
    for row in result.card.rows:
        if row.metric == "rmse":
            np.testing.assert_allclose(row.model, card[row.lead_hours]["model"], rtol=1e-4)
            np.testing.assert_allclose(row.persistence, card[row.lead_hours]["persistence"], rtol=1e-6)
    # ... and a slice of inits rolled out to 240 h (ten days of inits: too few to compare with
    # climatology, whose margin is a few hundredths of a kelvin) is far better than persistence.
    slice_ = evaluate_model(bundle, array, period="2014-08-01/2014-08-10", leads=(240,))
    row = next(r for r in slice_.card.rows if r.metric == "rmse")
    assert slice_.card.inits == 40
    assert row.model < 0.9 * row.persistence
