from __future__ import annotations

import json

import pytest

from fno_forecast.cli import main
from fno_forecast.evaluation.scorecard import scorecard_from_dict
from tests.fixtures.bundle import tiny_state_array


@pytest.fixture()
def verification_file(tmp_path):
    array = tiny_state_array(n_steps=48, start="2014-07-01", seed=7)
    dataset = xr_dataset(array)
    path = tmp_path / "verify.nc"
    dataset.to_netcdf(path)
    return path


def xr_dataset(array):
    import xarray as xr

    z = array.sel(channel="z500").drop_vars("channel").expand_dims(level=[500.0], axis=1)
    ds = xr.Dataset({"air": array.sel(channel="air").drop_vars("channel"), "z": z})
    ds["air"].attrs["units"] = "K"
    ds["z"].attrs["units"] = "m"
    ds["level"].attrs["units"] = "hPa"
    return ds


def test_evaluate_cli_json_table_and_plots(tiny_bundle, verification_file, tmp_path, capsys):
    out = tmp_path / "scores.json"
    plots = tmp_path / "plots"
    args = [
        "evaluate",
        "--model",
        str(tiny_bundle),
        "--data",
        str(verification_file),
        "--period",
        "2014-07-02/2014-07-05",
        "--leads",
        "6,24",
        "--json",
        str(out),
        "--plots",
        str(plots),
    ]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "air RMSE (K)" in text and "z500 ACC" in text
    data = json.loads(out.read_text())
    assert set(data) >= {"model", "data", "period", "inits", "scores"}
    assert data["period"] == ["2014-07-02", "2014-07-05"] and data["inits"] == 16
    assert {(r["variable"], r["metric"]) for r in data["scores"]} == {
        (v, m) for v in ("air", "z500") for m in ("rmse", "acc", "bias")
    }
    for row in data["scores"]:
        # the tiny bundle has no relaxation prior and its training period is not in the data: no prior,
        # no linear baseline
        assert set(row) == {
            "variable",
            "lead_hours",
            "metric",
            "model",
            "persistence",
            "climatology",
            "ci95",
            "versus",
        }
        assert row["lead_hours"] in (6, 24)
        assert isinstance(row["model"], float) and isinstance(row["persistence"], float)
        low, high = row["ci95"]["model"]
        assert low <= row["model"] <= high
        assert set(row["versus"]) == {"persistence", "climatology"}
    protocol = data["protocol"]
    assert protocol["verify_inside"] is False and protocol["inits_per_lead"] == {"6": 16, "24": 16}
    assert protocol["bootstrap"]["resamples"] == 1000 and protocol["bootstrap"]["seed"] == 0
    names = sorted(p.name for p in plots.iterdir())
    assert names == ["map_air_24h.png", "map_z500_24h.png", "skill_air.png", "skill_z500.png"]


def test_evaluate_cli_writes_the_skill_card(tiny_bundle, verification_file, tmp_path):
    import shutil

    model = tmp_path / "model"
    shutil.copytree(tiny_bundle, model)
    args = [
        "evaluate",
        "--model",
        str(model),
        "--data",
        str(verification_file),
        "--period",
        "2014-07-02/2014-07-03",
        "--leads",
        "6",
        "--write-skill-card",
    ]
    assert main(args) == 0
    card = json.loads((model / "model.json").read_text())["skill_card"]
    assert card["inits"] == 8 and card["scores"][0]["lead_hours"] == 6


def test_evaluate_cli_bad_period_is_one_line(tiny_bundle, verification_file, capsys):
    args = ["evaluate", "--model", str(tiny_bundle), "--data", str(verification_file), "--period", "2014-07"]
    assert main(args) == 2
    assert "2014-07" in capsys.readouterr().err


def test_evaluate_cli_verify_inside_and_folds(tiny_bundle, verification_file, tmp_path, capsys):
    out = tmp_path / "scores.json"
    args = [
        "evaluate",
        "--model",
        str(tiny_bundle),
        "--data",
        str(verification_file),
        "--period",
        "2014-07-02/2014-07-05",
        "--leads",
        "6,24",
        "--verify-inside",
        "--folds",
        "2014-07-06/2014-07-08,2014-07-09/2014-07-11",
        "--resamples",
        "50",
        "--seed",
        "3",
        "--json",
        str(out),
    ]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "verifying times inside the period" in text and "fold 2014-07-06 .. 2014-07-08" in text
    data = json.loads(out.read_text())
    # 07-02T00 .. 07-05T18 are 16 inits; 07-05T00 and later verify after the period at 24 h
    assert data["protocol"]["inits_per_lead"] == {"6": 15, "24": 12}
    assert data["protocol"]["bootstrap"]["seed"] == 3
    assert [f["period"] for f in data["folds"]] == [
        ["2014-07-06", "2014-07-08"],
        ["2014-07-09", "2014-07-11"],
    ]
    assert all(f["protocol"]["verify_inside"] for f in data["folds"])
    assert all("data" not in f and "model" not in f for f in data["folds"])  # the card's own, not repeated
    assert scorecard_from_dict(data).folds[1].data == data["data"]
    assert data["folds"][1]["protocol"]["inits_per_lead"] == {"6": 11, "24": 8}


def test_evaluate_cli_bad_folds_is_one_line(tiny_bundle, verification_file, capsys):
    args = ["evaluate", "--model", str(tiny_bundle), "--data", str(verification_file), "--period"]
    args += ["2014-07-02/2014-07-05", "--folds", "2014-07-06"]
    assert main(args) == 2
    assert "--folds" in capsys.readouterr().err
