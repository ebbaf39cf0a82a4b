"""Training config: strict flat TOML, overrides, printing; every shipped config loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from fno_forecast.cli import main
from fno_forecast.data.timeaxis import lead_steps_for
from fno_forecast.errors import ConfigError
from fno_forecast.models.registry import FNOConfig
from fno_forecast.training.config import TrainConfig, load_config, parse_override

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.toml"))


def test_configs_folder_is_not_empty() -> None:
    assert any(p.name == "ncep-air.toml" for p in CONFIGS)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_loads(path: Path) -> None:
    config = load_config(path)
    assert isinstance(config.model_config(), FNOConfig | type(config.model_config()))
    assert config.total_epochs >= 1
    assert "/" not in str(config.variables)  # no paths in configs


def test_ncep_config_keeps_the_test_period_out() -> None:
    config = load_config(CONFIGS[[p.name for p in CONFIGS].index("ncep-air.toml")])
    assert config.train_period == "2013-01-01/2014-06-30"
    assert config.val_period == "2014-07-01/2014-09-30"


def test_unknown_key_is_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('model = "fno"\nlearning_rate = 0.1\n')
    with pytest.raises(ConfigError, match="unknown key\\(s\\) learning_rate"):
        load_config(path)
    with pytest.raises(ConfigError, match="override: unknown key\\(s\\) lrr"):
        load_config(None, overrides={"lrr": 1.0})


def test_tables_and_wrong_types_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "nested.toml"
    path.write_text("[model]\nname = 'fno'\n")
    with pytest.raises(ConfigError, match="tables are not allowed \\(model\\)"):
        load_config(path)
    with pytest.raises(ConfigError, match="batch_size: expected an integer"):
        load_config(None, overrides={"batch_size": 2.5})
    with pytest.raises(ConfigError, match="use_history: expected true or false"):
        load_config(None, overrides={"use_history": "yes"})
    with pytest.raises(ConfigError, match="rollout_steps: every entry must be >= 1"):
        load_config(None, overrides={"rollout_steps": [2, 0]})
    with pytest.raises(ConfigError, match="unknown model 'unet'"):
        TrainConfig(model="unet")  # type: ignore[arg-type]


def test_overrides_apply_on_top_of_the_file(tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    path.write_text("lr = 0.01\nbatch_size = 8\n")
    config = load_config(
        path, overrides=dict([parse_override("lr=3e-4"), parse_override("rollout_steps=[2, 4]")])
    )
    assert config.lr == 3e-4 and config.batch_size == 8 and config.rollout_steps == (2, 4)
    assert parse_override('model="sfno"') == ("model", "sfno")
    assert parse_override("train_period=2013-01-01/2013-06-30") == ("train_period", "2013-01-01/2013-06-30")
    assert config.epoch_plan(0) == (1, 1)
    assert config.epoch_plan(config.stage1_epochs + 1) == (2, 4)


def test_print_config_prints_the_resolved_config(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code = main(
        [
            "train",
            "--data",
            "unused.nc",
            "--out",
            str(tmp_path),
            "--print-config",
            "--lr",
            "0.005",
            "--set",
            "n_layers=2",
        ]
    )
    assert code == 0
    text = capsys.readouterr().out
    assert "lr = 0.005\n" in text and "n_layers = 2\n" in text
    import tomllib

    assert load_config(None, overrides=tomllib.loads(text)).lr == 0.005
    assert not (tmp_path / "model").exists()


def test_cli_reports_config_errors_in_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code = main(["train", "--data", "x.nc", "--out", str(tmp_path), "--set", "bogus=1", "--print-config"])
    assert code == 2
    assert "unknown key(s) bogus" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("step_hours", "expected"),
    [(6.0, (1, 4, 12, 20, 40)), (24.0, (1, 3, 5, 10)), (1.0, (6, 24, 72, 120, 240)), (720.0, (1,))],
)
def test_default_validation_leads_follow_the_data_step(step_hours: float, expected: tuple[int, ...]) -> None:
    assert lead_steps_for((), step_hours=step_hours) == expected


def test_given_validation_leads_must_be_whole_steps() -> None:
    assert lead_steps_for((6.0, 24.0), step_hours=6.0) == (1, 4)
    with pytest.raises(
        ConfigError, match="val_leads_hours: 6 h is not a positive multiple of the data step 24 h"
    ):
        lead_steps_for((6.0, 24.0), step_hours=24.0)
