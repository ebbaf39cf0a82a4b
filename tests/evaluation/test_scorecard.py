from __future__ import annotations

import json

import numpy as np
import pytest

from fno_forecast.data.grid import latitude_weights
from fno_forecast.evaluation.bootstrap import BootstrapConfig
from fno_forecast.evaluation.intervals import lead_intervals
from fno_forecast.evaluation.metrics import SkillAccumulator
from fno_forecast.evaluation.plots import plot_map_panel, plot_skill_curves
from fno_forecast.evaluation.scorecard import Scorecard, scorecard_from_dict, write_scorecard
from fno_forecast.evaluation.scoretable import format_card

LAT = np.linspace(60.0, 20.0, 5)
LON = np.linspace(200.0, 230.0, 7)


def _card(*, intervals: bool = False) -> Scorecard:
    w = latitude_weights(LAT)
    rng = np.random.default_rng(0)
    truth = rng.normal(size=(4, 2, 5, 7))
    clim = np.zeros_like(truth)
    accumulators = {}
    systems = (("model", 0.5), ("persistence", 1.0), ("climatology", None))
    if intervals:
        systems += (("prior", 0.75),)
    for system, offset in systems:
        acc = SkillAccumulator(weights=w, n_channels=2)
        for lead in (6, 24):
            forecast = clim if offset is None else truth + offset * lead / 6
            acc.add(lead, forecast, truth, clim)
        accumulators[system] = acc
    bootstrap = None
    if intervals:
        per_lead = {lead: {s: a.per_init(lead) for s, a in accumulators.items()} for lead in (6.0, 24.0)}
        bootstrap = {
            lead: lead_intervals(per_lead[lead], lead_index=j, config=BootstrapConfig(resamples=50))
            for j, lead in enumerate((6.0, 24.0))
        }
    return Scorecard.from_results(
        model="tiny",
        data="synthetic.nc",
        period=("2014-07-01", "2014-07-02"),
        inits=4,
        channels=("t850", "z500"),
        results={s: a.result() for s, a in accumulators.items()},
        units={"t850": "K", "z500": "m2 s-2"},
        intervals=bootstrap,
        protocol={"own_prior": "prior"} if intervals else None,
    )


def test_scorecard_json_schema_and_values(tmp_path):
    card = _card()
    path = write_scorecard(card, tmp_path / "scores.json")
    data = json.loads(path.read_text())
    assert data["model"] == "tiny" and data["inits"] == 4 and data["period"] == ["2014-07-01", "2014-07-02"]
    assert len(data["scores"]) == 2 * 3 * 2  # variables x metrics x leads
    row = next(
        r for r in data["scores"] if r == {**r, "variable": "t850", "lead_hours": 24, "metric": "rmse"}
    )
    assert set(row) == {"variable", "lead_hours", "metric", "model", "persistence", "climatology"}
    assert row["model"] == pytest.approx(2.0) and row["persistence"] == pytest.approx(4.0)
    acc_clim = [r["climatology"] for r in data["scores"] if r["metric"] == "acc"]
    assert acc_clim == [None] * 4  # undefined, written as null
    assert scorecard_from_dict(data) == card


def test_table_lists_every_lead_and_system():
    text = format_card(_card())
    assert "t850 RMSE (K)" in text and "z500 ACC" in text
    lines = [ln.split() for ln in text.splitlines() if ln.split()[:1] == ["24"]]
    assert lines[0][1:3] == ["model", "2.000"] and lines[1][1:3] == ["persistence", "4.000"]


def test_card_with_intervals_round_trips_and_shows_the_gain_over_the_prior(tmp_path):
    card = _card(intervals=True)
    data = json.loads(write_scorecard(card, tmp_path / "scores.json").read_text())
    assert scorecard_from_dict(data) == card
    row = next(
        r for r in data["scores"] if (r["variable"], r["lead_hours"], r["metric"]) == ("t850", 24, "rmse")
    )
    assert row["prior"] == pytest.approx(3.0)
    # every forecast error is a constant field: each init has the same MSE, so the intervals are points
    assert row["ci95"]["model"] == pytest.approx([2.0, 2.0]) and row["ci95"]["prior"] == pytest.approx(
        [3.0, 3.0]
    )
    versus = row["versus"]["prior"]
    assert versus["difference"] == pytest.approx(-1.0) and versus["significant"] is True
    assert row["ci95"]["climatology"][0] < row["climatology"] < row["ci95"]["climatology"][1]
    text = format_card(card)
    gain = text.split("t850 network gain over its own prior")[1].splitlines()
    assert gain[2].split()[:2] == ["24", "1.000"] and gain[2].endswith("*")


def test_plots_are_png_files(tmp_path):
    card = _card()
    paths = plot_skill_curves(card, tmp_path)
    assert [p.name for p in paths] == ["skill_t850.png", "skill_z500.png"]
    panel = plot_map_panel(
        truth=np.ones((5, 7)),
        forecast=np.full((5, 7), 2.0),
        lat=LAT,
        lon=LON,
        variable="t850",
        units="K",
        init_time="2014-07-01T00",
        lead_hours=24,
        path=tmp_path / "map.png",
    )
    for p in [*paths, panel]:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="lat, lon"):
        plot_map_panel(
            truth=np.ones((5, 6)),
            forecast=np.ones((5, 6)),
            lat=LAT,
            lon=LON,
            variable="t",
            units="K",
            init_time="x",
            lead_hours=6,
            path=tmp_path / "bad.png",
        )
