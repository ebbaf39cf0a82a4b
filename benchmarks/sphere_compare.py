"""SFNO against FNO on the sphere: train each with `fno-forecast train`, score with `fno-forecast evaluate`.

For each regime's shallow-water file (`data/make_swe.py`) and each model, the project's own commands train
within the same budget and score on the held-out run; one table per regime then lists the RMSE of each
model beside persistence, climatology and the linear spectral baseline, and the SFNO's ratios to the
better of persistence and climatology and to the linear baseline.

    python data/make_swe.py --regime small --seed 0 --threads 1 --out swe_small.nc
    python data/make_swe.py --regime nonlinear --seed 1 --threads 1 --out swe_nonlinear.nc
    python -m benchmarks.sphere_compare --data small=swe_small.nc --data nonlinear=swe_nonlinear.nc \\
        --work runs/swe --minutes 5

Periods (the generator's defaults, 16 runs of 30 days): runs 1-12 train, 13-14 validate, run 16 is scored;
run 15 is left out so that no init of the scored period verifies across a gap. `--model auto` adds the
defaults-only run. A run already trained in `--work` is scored again without retraining.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

TRAIN_PERIOD = "2000-01-01/2001-01-17"
VAL_PERIOD = "2001-01-18/2001-03-22"
SCORE_PERIOD = "2001-04-25/2001-05-31"
LEADS = "6,24,120,240"
BASELINES = ("persistence", "climatology", "linear_spectral")
CLI = [sys.executable, "-m", "fno_forecast"]
LABELS = {"sfno": "SFNO", "fno": "FNO", "auto": "defaults (auto)"}


def train_and_score(data: Path, run: Path, *, model: str, minutes: float) -> dict[str, Any]:
    """Train `model` on `data` into `run` (unless its bundle is there) and return its scores."""
    if not (run / "model").exists():
        command = [*CLI, "train", "--data", str(data), "--out", str(run), "--max-minutes", f"{minutes:g}"]
        command += ["--quiet", "--train-period", TRAIN_PERIOD, "--val-period", VAL_PERIOD]
        if model != "auto":
            command += ["--model", model, "--set", "val_init_stride=8"]
        subprocess.run(command, check=True)
    scores = run / "scores.json"
    subprocess.run(
        [*CLI, "evaluate", "--model", str(run / "model"), "--data", str(data), "--period", SCORE_PERIOD]
        + ["--leads", LEADS, "--resamples", "100", "--json", str(scores)],
        check=True,
    )
    return json.loads(scores.read_text())


def _fmt(value: float) -> str:
    return f"{value:.3g}"


def format_table(regime: str, results: dict[str, dict[str, Any]]) -> str:
    """Markdown: one row per lead and variable, a column per model and baseline, the SFNO's ratios."""
    models = list(results)
    rows = {m: [r for r in results[m]["scores"] if r["metric"] == "rmse"] for m in models}
    first = rows[models[0]]
    inits = results[models[0]]["protocol"]["inits_per_lead"]
    header = ["lead", "var", *[LABELS.get(m, m) for m in models], *(b.replace("_", " ") for b in BASELINES)]
    if "sfno" in models:
        header += ["SFNO / min(pers., clim.)", "SFNO / linear"]
    lines = [
        f"**{regime}** regime, RMSE, {'/'.join(str(v) for v in inits.values())} inits per lead:",
        "",
        "| " + " | ".join(header) + " |",
        "| " + " | ".join(["---:", "---"] + ["---:"] * (len(header) - 2)) + " |",
    ]
    for index, base in enumerate(first):
        cells = [f"{base['lead_hours']:g} h", base["variable"]]
        cells += [_fmt(rows[m][index]["model"]) for m in models]
        cells += [_fmt(base[name]) if base.get(name) is not None else "-" for name in BASELINES]
        if "sfno" in models:
            sfno = rows["sfno"][index]["model"]
            cells.append(f"{sfno / min(base['persistence'], base['climatology']):.3f}")
            linear = base.get("linear_spectral")
            cells.append(f"{sfno / linear:.3f}" if linear else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", action="append", required=True, help="REGIME=FILE, repeatable")
    parser.add_argument("--model", action="append", help="models to train (default: sfno and fno)")
    parser.add_argument("--work", type=Path, required=True, help="folder for the runs")
    parser.add_argument("--minutes", type=float, default=5.0, help="training budget per run")
    args = parser.parse_args(argv)
    models = args.model or ["sfno", "fno"]
    tables = []
    for item in args.data:
        regime, _, path = item.partition("=")
        if not path or not Path(path).exists():
            print(f"--data {item}: expected REGIME=FILE with an existing file", file=sys.stderr)
            return 2
        results = {
            model: train_and_score(
                Path(path), args.work / f"{regime}-{model}", model=model, minutes=args.minutes
            )
            for model in models
        }
        tables.append(format_table(regime, results))
        print(tables[-1], flush=True)
    print("\n\n".join(tables))
    return 0


if __name__ == "__main__":
    sys.exit(main())
