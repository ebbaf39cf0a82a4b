"""Rolling-origin folds held out from the network: retrain a recipe per fold, score each on its fold.

The bundled model's card scores it on folds inside its own training period (in-sample for its network,
and marked so). Here the recipe is retrained once per fold on everything before the fold, so each fold's
model never saw the fold's weather: fit through 2013-12, score 2014-01..03; fit through 2014-03, score
2014-04..06 (the rolling origin of `fno_forecast.evaluation.folds`). The fold is each model's validation
period, as the bundled model's validation period is its own: the best epoch is selected on it, so the
figure shares the validation figure's mild optimism from choosing among a run's epochs; nothing else
(network, prior, corrections, lead calibration, the linear baseline) is fitted on it. Every verifying
time lies inside the fold; every score has its 95% moving-block bootstrap interval.

    python -m benchmarks.held_out_folds --work /tmp/folds     # the bundled recipe, about 30 minutes
    python -m benchmarks.held_out_folds --work /tmp/folds-lar --calibration-linear   # with the linear AR
    python -m benchmarks.held_out_folds --work /tmp/folds-off --no-calibration-offset  # offset left alone

A fold whose model is already in `--work` is scored again without retraining (remove `fold-K/model` to
refit its lead calibration on the finished checkpoint, a minute or two); an interrupted training
resumes from its checkpoint (which keeps the config it started with); either is refused where it was
made for another fold or with other calibration settings than those asked for. The NCEP test period
2014-10..12 is used for nothing: training selects its two periods and the scored data is cut at each
fold's end.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from fno_forecast.training.config import TrainConfig

REPO = Path(__file__).resolve().parents[1]
FOLDS = ("2014-01-01/2014-03-31", "2014-04-01/2014-06-30")
SYSTEMS = ("model", "persistence", "climatology", "linear_ar", "prior_recent_calibrated")


def fit_period(config_train_period: str, fold: str) -> str:
    """The training period of a fold's model: from the recipe's start to the day before the fold."""
    start = config_train_period.split("/")[0]
    end = (pd.Timestamp(fold.split("/")[0]) - pd.Timedelta(days=1)).strftime("%Y-%m-%d")
    return f"{start}/{end}"


def run_fold(
    config_path: Path,
    data: Path,
    fold: str,
    out: Path,
    *,
    calibration_linear: bool = False,
    calibration_offset: bool = True,
) -> dict[str, Any]:
    """Train the recipe on everything before `fold` (validated on it), score it on the fold."""
    from fno_forecast.bundle import load_bundle
    from fno_forecast.evaluation.bootstrap import BootstrapConfig
    from fno_forecast.evaluation.scoring import evaluate_model, open_for_bundle
    from fno_forecast.skill_guard import cut_after
    from fno_forecast.training.config import load_config_and_keys
    from fno_forecast.training.loop import train

    recipe, _ = load_config_and_keys(config_path)
    overrides: dict[str, Any] = {
        "train_period": fit_period(recipe.train_period, fold),
        "val_period": fold,
        "calibration_linear": calibration_linear,
        "calibration_offset": calibration_offset,
    }
    config, explicit = load_config_and_keys(config_path, overrides=overrides)
    if not (out / "model").exists():  # `train` refuses to resume a run made with other `overrides`
        resume = (out / "checkpoint.pt").exists()
        train(config, data_path=str(data), out_dir=out, quiet=True, explicit=explicit, resume=resume)
    bundle = load_bundle(out / "model")
    _check_settings(bundle.metadata["training"]["config"], config, where=out / "model")
    array = cut_after(open_for_bundle(bundle, [str(data)]), fold)
    card = evaluate_model(
        bundle, array, period=fold, verify_inside=True, bootstrap=BootstrapConfig()
    ).card.to_dict()
    return {"fold": fold, "trained": overrides["train_period"], "rows": card["scores"]}


def _check_settings(stored: dict[str, Any], config: TrainConfig, *, where: Path) -> None:
    """Refuse a fold model in `--work` made for another fold (folders are numbered by the fold's place
    in `--folds`) or with other calibration settings than those asked for: it would be scored under the
    wrong label."""
    from fno_forecast.training.config import build_config

    made = build_config(stored, source=str(where))
    for key in ("train_period", "val_period", "calibration_linear", "calibration_offset"):
        if getattr(made, key) != getattr(config, key):
            raise ValueError(
                f"{where}: made with {key} = {getattr(made, key)}, not {getattr(config, key)}; "
                "use another --work"
            )


def format_table(results: list[dict[str, Any]]) -> str:
    """One line per fold, variable and lead: RMSE of each system with the model's 95% interval, and the
    model less the linear AR, the climatology and persistence with their paired intervals (`*` where
    one excludes zero)."""
    lines = [
        "| fold (trained on) | variable | lead | model [95%] | persistence | climatology | linear AR "
        "| prior | model - linear AR [95%] | model - climatology [95%] | model - persistence [95%] |",
        "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | --- | --- | --- |",
    ]
    for result in results:
        for row in (r for r in result["rows"] if r["metric"] == "rmse"):
            low, high = row["ci95"]["model"]
            values = " | ".join(f"{row[name]:.3f}" for name in SYSTEMS[1:])
            differences = " | ".join(
                _difference(row["versus"][name]) for name in ("linear_ar", "climatology", "persistence")
            )
            lines.append(
                f"| {result['fold']} ({result['trained']}) | {row['variable']} | {row['lead_hours']} h "
                f"| {row['model']:.3f} [{low:.3f}, {high:.3f}] | {values} | {differences} |"
            )
    return "\n".join(lines)


def _difference(versus: dict[str, Any]) -> str:
    """The model less a baseline with its paired 95% interval, `*` where the interval excludes zero."""
    star = " *" if versus["significant"] else ""
    return f"{versus['difference']:+.3f} [{versus['ci95'][0]:+.3f}, {versus['ci95'][1]:+.3f}]{star}"


def main(argv: list[str] | None = None) -> int:
    from fno_forecast.errors import FnoForecastError

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    shared = Path(os.environ.get("FNO_SHARED_DATA", REPO.parent / "shared" / "data"))
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "ncep-air.toml")
    parser.add_argument("--data", type=Path, default=shared / "ncep_air_2013-2014.nc")
    parser.add_argument("--folds", default=",".join(FOLDS), help="comma-separated START/END periods")
    parser.add_argument("--work", type=Path, required=True, help="folder for the fold runs")
    parser.add_argument(
        "--calibration-linear",
        action="store_true",
        help="the linear AR as a candidate of the lead calibration",
    )
    parser.add_argument(
        "--no-calibration-offset",
        action="store_true",
        help="the lead calibration leaves the recent-anomaly offset as its own fit has it",
    )
    args = parser.parse_args(argv)
    if not args.data.exists():
        print(f"--data {args.data}: no such file (set FNO_SHARED_DATA)", file=sys.stderr)
        return 2
    results = []
    for index, fold in enumerate(f.strip() for f in args.folds.split(",") if f.strip()):
        print(f"fold {fold}: training ...", flush=True)
        out = args.work / f"fold-{index}"
        try:
            result = run_fold(
                args.config,
                args.data,
                fold,
                out,
                calibration_linear=args.calibration_linear,
                calibration_offset=not args.no_calibration_offset,
            )
        except (ValueError, FnoForecastError) as error:
            print(error, file=sys.stderr)
            return 2
        results.append(result)
        print(format_table(results[-1:]), flush=True)
    print(format_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
