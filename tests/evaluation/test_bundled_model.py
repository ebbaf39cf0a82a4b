"""The bundled default model: its skill card is what evaluating it gives, under the card's own protocol.

The card is scored on the validation period with every verifying time inside it, with 95% intervals;
it must show the model significantly better than persistence, climatology and the linear baseline at
6-72 h, never significantly worse than any of them at any lead, and a significant gain of the network
over its own prior at 6 and 24 h.
"""

from __future__ import annotations

import numpy as np
import pytest

from fno_forecast.bundle import default_bundle_path, load_bundle
from fno_forecast.evaluation.scoring import evaluate_model, open_for_bundle

VALIDATION = ("2014-07-01", "2014-09-30")
# 92 days of 6-hourly inits; a lead of L hours leaves out the last L / 6 inits (and 09-30T18 at 6 h)
INITS_PER_LEAD = {"6": 367, "24": 364, "72": 356, "120": 348, "240": 328}
REFERENCES = ("persistence", "climatology", "linear_ar")


@pytest.fixture(scope="module")
def bundle():
    return load_bundle(default_bundle_path())


def _rows(card: dict, metric: str = "rmse") -> dict[float, dict]:
    return {float(r["lead_hours"]): r for r in card["scores"] if r["metric"] == metric}


def test_skill_card_protocol_verifies_inside_the_validation_period(bundle) -> None:
    card = bundle.skill_card
    assert card is not None and tuple(card["period"]) == VALIDATION
    training = bundle.metadata["training"]
    assert training["train_period"].endswith("2014-06-30") and training["val_period"].startswith("2014-07-01")
    protocol = card["protocol"]
    assert protocol["verify_inside"] is True and protocol["inits_per_lead"] == INITS_PER_LEAD
    assert protocol["scored_with"]["recent_anomaly"] and protocol["scored_with"]["lead_calibration"]
    assert protocol["own_prior"] == "prior_recent_calibrated"
    assert protocol["linear_ar"]["components"] == 150
    assert protocol["linear_ar"]["fitted_on"].endswith("2014-06-30T18:00")
    assert protocol["bootstrap"]["confidence"] == 0.95


def test_skill_card_model_against_its_baselines_and_its_prior(bundle) -> None:
    rmse = _rows(bundle.skill_card)
    assert sorted(rmse) == [6.0, 24.0, 72.0, 120.0, 240.0]
    for lead, row in rmse.items():
        low, high = row["ci95"]["model"]
        assert low < row["model"] < high
        for reference in (*REFERENCES, "prior_recent_calibrated"):
            versus = row["versus"][reference]
            assert not (versus["significant"] and versus["difference"] > 0), (lead, reference)
            if lead <= 72.0 and reference in REFERENCES:
                assert versus["significant"] and versus["difference"] < 0, (lead, reference)
    for lead in (6.0, 24.0):
        gain = rmse[lead]["versus"]["prior_recent_calibrated"]
        assert gain["significant"] and gain["difference"] < -0.1, lead


def test_skill_card_has_the_rolling_origin_folds_marked_in_sample(bundle) -> None:
    folds = bundle.skill_card["folds"]
    assert [f["period"] for f in folds] == [["2014-01-01", "2014-03-31"], ["2014-04-01", "2014-06-30"]]
    for fold in folds:
        assert fold["protocol"]["verify_inside"] is True and fold["protocol"]["in_sample"] is True
        start = fold["period"][0]
        assert fold["protocol"]["linear_ar"]["fitted_on"].split("/")[1] < start


@pytest.mark.slow
def test_skill_card_is_reproduced_on_the_validation_data(bundle, ncep_nc) -> None:
    array = open_for_bundle(bundle, [ncep_nc])
    # Short leads over every validation init reproduce the card, intervals included (same seeds) ...
    result = evaluate_model(bundle, array, period="/".join(VALIDATION), leads=(6, 24), verify_inside=True)
    card = _rows(bundle.skill_card)
    for row in result.card.rows:
        if row.metric != "rmse":
            continue
        stored = card[row.lead_hours]
        np.testing.assert_allclose(row.model, stored["model"], rtol=1e-4)
        np.testing.assert_allclose(row.persistence, stored["persistence"], rtol=1e-6)
        np.testing.assert_allclose(row.others["linear_ar"], stored["linear_ar"], rtol=1e-4)
        np.testing.assert_allclose(row.ci95["model"], stored["ci95"]["model"], rtol=1e-3)
    # ... and a slice of inits rolled out to 240 h (ten days of inits: too few to compare with
    # climatology) is far better than persistence.
    slice_ = evaluate_model(bundle, array, period="2014-08-01/2014-08-10", leads=(240,), explain=False)
    row = next(r for r in slice_.card.rows if r.metric == "rmse")
    assert slice_.card.inits == 40
    assert row.model < 0.9 * row.persistence
