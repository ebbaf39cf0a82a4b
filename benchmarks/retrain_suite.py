"""Retrain with defaults only on several kinds of data, score after the validation period, print one table.

Each dataset is trained as a new user would: `fno-forecast train --data FILE --train-period ...
--val-period ... --max-minutes M` with nothing else set (every other default is derived from the data),
then scored with the evaluation code on a period after its validation period (the data is cut at that
period's end, so for NCEP the test period 2014-10..12 is never read). The goal on every row: the model
beats persistence at every lead and beats climatology at every lead where climatology beats persistence.
Beside each row, the model's RMSE less the better baseline's with its paired 95% interval (a moving-block
bootstrap over inits, `fno_forecast.evaluation.bootstrap`): a row whose interval straddles zero is a
draw the score period cannot decide.

    python -m benchmarks.retrain_suite --minutes 5            # the full suite (synthetic sets generated)
    python -m benchmarks.retrain_suite --minutes 1 --only hourly daily
    python -m benchmarks.retrain_suite --tiny                 # CI-sized: tiny grids, seconds

The synthetic sets come from `data/make_synthetic.py` (hourly regional, daily regional, monthly global);
NCEP air from `$FNO_SHARED_DATA` (or ../shared/data); the global shallow-water set from `data/make_swe.py`'s
default (when that recipe exists; else its row is left out with the reason).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Case:
    """A dataset to retrain on: how to get the file, the three periods, and the generator arguments."""

    name: str
    train_period: str
    val_period: str
    score_period: str
    recipe: tuple[str, ...] = ()  # arguments of data/make_synthetic.py (empty: an existing file)
    path: str = ""


def _shared_data() -> Path:
    env = os.environ.get("FNO_SHARED_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


def full_cases() -> list[Case]:
    return [
        Case(
            "ncep-air",
            "2013-01-01/2014-06-30",
            "2014-07-01/2014-07-31",
            "2014-08-01/2014-09-30",
            path=str(_shared_data() / "ncep_air_2013-2014.nc"),
        ),
        Case(  # scored on 11 days: 4 days of 3-day weather held one or two independent states
            "hourly",
            "2021-06-01/2021-06-21",
            "2021-06-22/2021-06-24",
            "2021-06-25/2021-07-05",
            recipe=("hourly", "--days", "35"),
        ),
        Case(  # scored on 2.5 years: on 6 months a 10-day margin of 3% was inside its interval
            "daily",
            "2015-01-01/2017-12-31",
            "2018-01-01/2018-06-30",
            "2018-07-01/2020-12-31",
            recipe=("daily", "--years", "7"),
        ),
        Case(  # scored on 13 years: on 3 (36 inits) a 6-month margin of 1% was inside its interval
            "monthly",
            "1981-01-01/2004-12-31",
            "2005-01-01/2007-12-31",
            "2008-01-01/2020-12-31",
            recipe=("monthly", "--years", "40"),
        ),
    ]


def swe_case() -> Case:
    """`data/make_swe.py`'s default: 16 trajectories of 30 days (6-hourly) from 2000-01-01, 32 days apart:
    12 train, 2 validate, 2 score."""
    return Case("shallow-water", "2000-01-01/2001-01-17", "2001-01-19/2001-03-22", "2001-03-24/2001-05-26")


def tiny_cases() -> list[Case]:
    """CI-sized: a 10-day hourly set on 8 x 12 points (trains in seconds)."""
    return [
        Case(
            "hourly-tiny",
            "2021-06-01/2021-06-06",
            "2021-06-07/2021-06-08",
            "2021-06-09/2021-06-10",
            recipe=("hourly", "--days", "10", "--nlat", "8", "--nlon", "12"),
        )
    ]


def prepare(case: Case, folder: Path) -> Path:
    """The case's data file: generated into `folder` when it has a recipe."""
    if case.name == "shallow-water":
        out = folder / "swe.nc"
        if not out.exists():
            command = [sys.executable, str(REPO / "data" / "make_swe.py"), "--out", str(out)]
            subprocess.run(command, check=True, capture_output=True, text=True)
        return out
    if not case.recipe:
        return Path(case.path)
    out = folder / f"{case.name}.nc"
    if not out.exists():
        command = [sys.executable, str(REPO / "data" / "make_synthetic.py"), *case.recipe, "--out", str(out)]
        subprocess.run(command, check=True, capture_output=True, text=True)
    return out


def run_case(
    case: Case,
    data: Path,
    out: Path,
    *,
    minutes: float,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Train with defaults only under a `minutes` budget, score on the case's score period."""
    from fno_forecast.bundle import load_bundle
    from fno_forecast.evaluation.bootstrap import BootstrapConfig
    from fno_forecast.evaluation.scoring import evaluate_model, open_for_bundle
    from fno_forecast.skill_guard import cut_after, guard_bundle
    from fno_forecast.training.config import load_config_and_keys
    from fno_forecast.training.loop import train

    overrides = {"train_period": case.train_period, "val_period": case.val_period}
    config, explicit = load_config_and_keys(None, overrides=overrides)
    started = time.monotonic()
    result = train(
        config,
        data_path=str(data),
        out_dir=out,
        max_minutes=minutes,
        quiet=True,
        explicit=explicit,
        clock=clock,
    )
    elapsed = (time.monotonic() - started) / 60.0
    verdict = guard_bundle(result.bundle_path, [str(data)])
    bundle = load_bundle(result.bundle_path)
    leads = tuple(float(h) for h in bundle.metadata["training"]["config"]["val_leads_hours"])
    array = cut_after(open_for_bundle(bundle, [str(data)]), case.score_period)
    card = evaluate_model(
        bundle, array, period=case.score_period, leads=leads, explain=False, bootstrap=BootstrapConfig()
    ).card.to_dict()
    grid = bundle.schema.grid
    return {
        "dataset": case.name,
        "grid": f"{grid.nlat}x{grid.nlon}{' global' if grid.is_global else ''}",
        "step_hours": bundle.step_hours,
        "channels": len(bundle.schema.channels),
        "model": bundle.metadata["model"]["name"],
        "minutes": elapsed,
        "verdict": verdict["status"],
        "rows": [r for r in card["scores"] if r["metric"] == "rmse"],
    }


def better_baseline(row: dict[str, Any]) -> str:
    """ "climatology" where it beats persistence, else "persistence": the baseline the goal holds a lead to."""
    climatology = row["climatology"]
    return "climatology" if climatology is not None and climatology < row["persistence"] else "persistence"


def goal_met(rows: list[dict[str, Any]]) -> bool:
    """The model beats persistence at every lead, and climatology wherever climatology beats persistence."""
    return all(row["model"] < row[better_baseline(row)] for row in rows)


def versus_better(row: dict[str, Any]) -> str:
    """The model's RMSE less the better baseline's, with the paired 95% interval where it was drawn."""
    better = better_baseline(row)
    versus = (row.get("versus") or {}).get(better)
    if not versus:
        return f"{row['model'] - row[better]:+.3f} ({better})"
    low, high = versus["ci95"]
    return f"{versus['difference']:+.3f} [{low:+.3f}, {high:+.3f}] ({better})"


def format_table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| dataset | grid | step | ch | model | min | variable | lead | model RMSE | persistence | climatology "
        "| model - better, 95% | goal |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        step = f"{r['step_hours'] / 24:g} d" if r["step_hours"] >= 24 else f"{r['step_hours']:g} h"
        if r["step_hours"] > 24 * 27:
            step = f"{r['step_hours'] / 730.485:.0f} mo"
        goal = "met" if goal_met(r["rows"]) else "MISSED"
        for row in r["rows"]:
            lead = f"{row['lead_hours']:g} h"
            if r["step_hours"] > 24 * 27:
                lead = f"{row['lead_hours'] / r['step_hours']:.0f} mo"
            lines.append(
                f"| {r['dataset']} | {r['grid']} | {step} | {r['channels']} | {r['model']} | {r['minutes']:.1f} "
                f"| {row['variable']} | {lead} | {row['model']:.3f} | {row['persistence']:.3f} "
                f"| {row['climatology']:.3f} | {versus_better(row)} | {goal} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=5.0, help="training budget per dataset")
    parser.add_argument("--tiny", action="store_true", help="the CI-sized suite (tiny grids, seconds)")
    parser.add_argument("--only", nargs="*", help="dataset names to run")
    parser.add_argument("--work", type=Path, help="folder for data and runs (default: a temporary one)")
    args = parser.parse_args(argv)
    cases = tiny_cases() if args.tiny else full_cases()
    if not args.tiny and (REPO / "data" / "make_swe.py").exists():
        cases.insert(1, swe_case())
    elif not args.tiny:
        print("shallow-water row left out: data/make_swe.py is not in this checkout")
    if args.only:
        cases = [c for c in cases if c.name in args.only]
    with tempfile.TemporaryDirectory() as temporary:
        work = args.work or Path(temporary)
        work.mkdir(parents=True, exist_ok=True)
        results = []
        for case in cases:
            data = prepare(case, work)
            if not data.exists():
                print(f"{case.name} row left out: {data} is absent")
                continue
            print(f"{case.name}: training for up to {args.minutes:g} min ...", flush=True)
            results.append(run_case(case, data, work / f"run-{case.name}", minutes=args.minutes))
    print(format_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
